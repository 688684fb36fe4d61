#include "methods/registry.h"

#include <dlfcn.h>

namespace da::methods {

Registry& Registry::instance() {
  static Registry registry;
  return registry;
}

void Registry::add(const std::string& name, Factory factory) {
  if (!factories_.emplace(name, std::move(factory)).second) {
    throw MethodError("method '" + name + "' is registered twice");
  }
}

std::unique_ptr<Method> Registry::create(const std::string& name, Params& params, const ModelInfo& model) const {
  const auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string valid;
    for (const auto& n : names()) valid += (valid.empty() ? "'" : ", '") + n + "'";
    throw MethodError(params.path() + ".name: unknown method '" + name + "', registered methods are " + valid);
  }
  auto method = it->second(params, model);
  params.finish();
  return method;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

void load_plugin(const std::string& path) {
  // RTLD_GLOBAL: the plug-in resolves the registry against the one already
  // loaded with libda_dist_methods.
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    const char* reason = dlerror();
    throw MethodError("plugins: cannot load '" + path + "': " + (reason ? reason : "unknown reason"));
  }
}

}  // namespace da::methods
