#include "methods/method.h"

namespace da::methods {

// The default state is the auxiliary module's parameters and buffers.
void Method::save_state(torch::serialize::OutputArchive& archive) const {
  auto aux = const_cast<Method*>(this)->module();
  if (aux) aux->save(archive);
}

void Method::load_state(torch::serialize::InputArchive& archive) {
  auto aux = module();
  if (aux) aux->load(archive);
}

}  // namespace da::methods
