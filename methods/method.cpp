#include "methods/method.h"

#include <c10/util/StringUtil.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <stdexcept>
#include <string>

namespace da::methods {

// The default state is the auxiliary module's parameters and buffers.
void Method::save_state(torch::serialize::OutputArchive& archive) const {
  auto aux = const_cast<Method*>(this)->module();
  if (aux) aux->save(archive);
}

namespace {

// Not Module::load: it swaps each parameter's storage (Tensor::set_), and
// after that the gradient reducer's hooks on the method's parameters no
// longer fired, so on two ranks the discriminators drifted apart after a
// resume (DataParallel.TwoRanksResumeExactly). Copying into the existing
// tensors keeps every tensor, hook and optimizer handle as it was.
void copy_into(torch::nn::Module& module, torch::serialize::InputArchive& archive) {
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, at::Tensor& target, bool is_buffer) {
    at::Tensor value;
    archive.read(name, value, is_buffer);
    if (value.sizes() != target.sizes()) {
      throw std::runtime_error(name + ": saved shape " + c10::str(value.sizes()) + ", the method has " +
                               c10::str(target.sizes()));
    }
    target.copy_(value);
  };
  for (auto& item : module.named_parameters(/*recurse=*/false)) copy(item.key(), item.value(), false);
  for (auto& item : module.named_buffers(/*recurse=*/false)) copy(item.key(), item.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive child_archive;
    archive.read(child.key(), child_archive);
    copy_into(*child.value(), child_archive);
  }
}

}  // namespace

void Method::load_state(torch::serialize::InputArchive& archive) {
  auto aux = module();
  if (aux) copy_into(*aux, archive);
}

}  // namespace da::methods
