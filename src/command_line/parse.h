// Our conventions on top of CLI11, shared by da_dist and the tools: -h/--help
// answers with the help of the command it follows; anything wrong with the
// command line is one line (config::UsageError, exit status 2) that names
// the option, and an unknown option or command gets "did you mean ...?".
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace da::command_line {

// A CLI11 application with our defaults: a flag given a value
// (--confidence=yes) is an error rather than a silent override.
std::unique_ptr<CLI::App> make_app(const std::string& name, const std::string& description);

// Parses `args` (the command line without the program name) with `app`.
// Returns the help to print when -h/--help was given (the help of the
// subcommand it follows, or of every command when it follows none), and ""
// otherwise. Throws config::UsageError with one line for anything else:
//   unknown option '--confg' [for predict], did you mean '--config'? (see --help)
//   unknown command 'trian', did you mean 'train'?
//   --input needs at least one archive / --config needs a value
//   --batch-size: expected a positive integer, got '0'   (a check's message)
// `default_command` names the subcommand that a command line starting with
// an option (or empty) means, as `da_dist --config x` means `da_dist train
// --config x`; messages do not name it.
std::string parse(CLI::App& app, std::vector<std::string> args, const std::string& default_command = "");
std::string parse(CLI::App& app, int argc, const char* const* argv, const std::string& default_command = "");

}  // namespace da::command_line
