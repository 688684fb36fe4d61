// Methods are created by name from the configuration. Built-ins and methods
// in a user's shared library (loaded from the config's `plugins:` list)
// register the same way, with DA_REGISTER_METHOD, so adding a method needs
// no change to the framework.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

// Builds a method from its parameters. Must read every parameter it accepts
// from `params` (with its ParamDoc: --help-config lists what a factory reads
// when given none); the registry rejects any left over.
using Factory = std::function<std::unique_ptr<Method>(Params& params, const ModelInfo& model)>;

class Registry {
 public:
  static Registry& instance();

  // Registers `name`; registering a name twice is an error (two plug-ins
  // that both claim "dann" would otherwise shadow each other silently).
  void add(const std::string& name, Factory factory);

  // Creates a method. Unknown names list the registered ones; unknown or bad
  // parameters name their YAML path (MethodError).
  std::unique_ptr<Method> create(const std::string& name, Params& params, const ModelInfo& model) const;

  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return factories_.count(name) > 0; }

 private:
  std::map<std::string, Factory> factories_;
};

// Loads a plug-in shared library; its DA_REGISTER_METHOD statements run as it
// loads. Errors name the file and dlopen's reason.
void load_plugin(const std::string& path);

// Registers a method class at load time. The class needs a constructor
// (Params&, const ModelInfo&).
#define DA_REGISTER_METHOD(NAME, CLASS)                                                         \
  static const bool da_registered_##CLASS = [] {                                               \
    ::da::methods::Registry::instance().add(                                                    \
        NAME, [](::da::methods::Params& p, const ::da::methods::ModelInfo& m) {                 \
          return std::unique_ptr<::da::methods::Method>(std::make_unique<CLASS>(p, m));         \
        });                                                                                     \
    return true;                                                                                \
  }()

}  // namespace da::methods
