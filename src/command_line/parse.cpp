#include "command_line/parse.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>

#include "config/errors.h"
#include "config/suggest.h"

namespace da::command_line {
namespace {

using config::UsageError;

bool looks_like_option(const std::string& word) { return word.size() > 1 && word[0] == '-'; }

bool is_help(const std::string& word) { return word == "-h" || word == "--help"; }

// The application and the subcommands selected on the command line, outermost first.
std::vector<const CLI::App*> selected_chain(const CLI::App& app) {
  std::vector<const CLI::App*> chain{&app};
  for (std::size_t i = 0; i < chain.size(); ++i) {
    for (const CLI::App* sub : chain[i]->get_subcommands()) chain.push_back(sub);
  }
  return chain;
}

// " for predict"; nothing for the application itself or its default command.
std::string for_command(const CLI::App& app, const CLI::App& root, const std::string& default_command) {
  if (&app == &root || app.get_name() == default_command) return "";
  return " for " + app.get_name();
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
    for (const auto& name : option->get_snames()) names.push_back("-" + name);
  }
  return names;
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  // Option groups are nameless subcommands.
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::string unknown_command(const CLI::App& app, const std::string& word) {
  const std::vector<std::string> commands = command_names(app);
  const std::string near = config::closest_match(word, commands);
  return "unknown command '" + word + "'" +
         (near.empty() ? "; commands are " + config::quoted_list(commands) : ", did you mean '" + near + "'?");
}

// "--config needs a value"; "--input needs at least one archive" for an
// option that takes several values at once (its type name, "ARCHIVE", says
// of what).
std::string needs_value(const CLI::Option& option) {
  if (option.get_items_expected_max() <= 1 || !option.get_allow_extra_args()) {
    return option.get_name() + " needs a value";
  }
  std::string type = option.get_type_name();
  type = type.substr(0, type.find(':'));
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  return option.get_name() + " needs at least one " + type;
}

// An option whose value starts with "--" had none: CLI11 takes whatever
// follows an option as its first value, so `--input --output x` would read
// "--output" as an archive.
void reject_missing_values(const std::vector<const CLI::App*>& chain) {
  for (const CLI::App* app : chain) {
    for (const CLI::Option* option : app->get_options()) {
      if (option->get_items_expected_max() == 0) continue;  // a flag
      for (const std::string& value : option->results()) {
        if (value.rfind("--", 0) == 0) throw UsageError(needs_value(*option));
      }
    }
  }
}

// The first argument that no option or subcommand took, with the nearest
// option (or command) name as a suggestion.
void reject_unknown(const CLI::App& root, const std::vector<const CLI::App*>& chain,
                    const std::string& default_command) {
  for (const CLI::App* app : chain) {
    const std::vector<std::string> left = app->remaining();
    if (left.empty()) continue;
    std::string word = left.front();
    const std::string context = for_command(*app, root, default_command);
    if (!looks_like_option(word)) {
      if (app == &root && root.get_subcommands().empty() && !command_names(root).empty()) {
        throw UsageError(unknown_command(root, word));
      }
      throw UsageError("unexpected argument '" + word + "'" + context + " (see --help)");
    }
    word = word.substr(0, word.find('='));  // --name=value
    std::string message = "unknown option '" + word + "'" + context;
    const std::string near = config::closest_match(word, option_names(*app));
    if (!near.empty()) message += ", did you mean '" + near + "'?";
    throw UsageError(message + " (see --help)");
  }
}

const CLI::Option* find_option(const std::vector<const CLI::App*>& chain, const std::string& name) {
  for (const CLI::App* app : chain) {
    if (const CLI::Option* option = app->get_option_no_throw(name)) return option;
  }
  return nullptr;
}

// CLI11's message, in our words where they differ (CLI11 2.1's wording).
std::string translate(const CLI::App& root, const std::vector<const CLI::App*>& chain, const CLI::ParseError& error) {
  const std::string message = error.what();
  if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr && root.get_subcommands().empty() &&
      root.get_require_subcommand_min() > 0) {
    return "a command is required: " + config::quoted_list(command_names(root)) + " (see --help)";
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
    // "NAME: 1 required TYPE missing", "NAME: At Most 1 required but received 2",
    // "NAME was given a disallowed flag override" (NAME without its dashes).
    const std::string name = message.substr(0, message.find_first_of(": "));
    const CLI::Option* option = find_option(chain, name);
    if (option == nullptr) option = find_option(chain, "--" + name);
    if (option != nullptr) {
      if (message.find(" missing") != std::string::npos) return needs_value(*option);
      if (message.find("At Most") != std::string::npos) return option->get_name() + " given more than once";
      if (message.find("flag override") != std::string::npos) return option->get_name() + " takes no value";
    }
  }
  return message;
}

}  // namespace

std::unique_ptr<CLI::App> make_app(const std::string& name, const std::string& description) {
  auto app = std::make_unique<CLI::App>(description, name);
  app->option_defaults()->disable_flag_override();
  return app;
}

std::string parse(CLI::App& app, std::vector<std::string> args, const std::string& default_command) {
  if (!default_command.empty() && (args.empty() || (looks_like_option(args.front()) && !is_help(args.front())))) {
    args.insert(args.begin(), default_command);
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    // Help after no command: every command's options (as `da_dist --help`).
    const bool all = app.get_subcommands().empty() && !command_names(app).empty();
    return app.help("", all ? CLI::AppFormatMode::All : CLI::AppFormatMode::Normal);
  } catch (const CLI::ParseError& error) {
    const std::vector<const CLI::App*> chain = selected_chain(app);
    reject_missing_values(chain);
    reject_unknown(app, chain, default_command);
    throw UsageError(translate(app, chain, error));
  }
  reject_missing_values(selected_chain(app));
  return "";
}

std::string parse(CLI::App& app, int argc, const char* const* argv, const std::string& default_command) {
  return parse(app, std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc), default_command);
}

}  // namespace da::command_line
