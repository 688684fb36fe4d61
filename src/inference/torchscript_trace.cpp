#include "inference/torchscript_trace.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace da::inference {
namespace {

// "da::models::ResNetEncoderImpl" -> "ResNetEncoder": the Python-visible class name.
std::string class_name(const torch::nn::Module& module) {
  std::string name = module.name();
  if (const auto colon = name.rfind(':'); colon != std::string::npos) name = name.substr(colon + 1);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}

// A TorchScript module holding the tensors of `module` and mirrors of its
// children, recursively. Class names are mangled where they repeat.
torch::jit::Module mirror(const torch::nn::Module& module, const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  torch::jit::Module out(c10::QualifiedName("__torch__.da_dist." + class_name(module)), cu, /*shouldMangle=*/true);
  out.register_attribute("training", c10::BoolType::get(), false);  // every TorchScript module has one
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    if (p.value().defined()) out.register_parameter(p.key(), p.value(), /*is_buffer=*/false);
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    if (b.value().defined()) out.register_buffer(b.key(), b.value());
  }
  for (const auto& child : module.named_children()) out.register_module(child.key(), mirror(*child.value(), cu));
  return out;
}

}  // namespace

torch::jit::Module trace_segmentation_model(models::SegmentationModelImpl& model, models::Domain domain,
                                            std::int64_t tile) {
  if (tile <= 0 || tile % 32 != 0) {
    throw std::invalid_argument("the tile size to trace with must be a positive multiple of 32, got " +
                                std::to_string(tile));
  }
  torch::NoGradGuard no_grad;
  model.eval();
  model.set_domain(domain);
  const auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module module = mirror(model, cu);
  const at::Tensor example = at::zeros({1, model.spec().in_channels, tile, tile}, at::kFloat);
  auto forward = [&model](torch::jit::Stack inputs) -> torch::jit::Stack {
    return {model.forward(inputs.at(0).toTensor()).logits};
  };
  auto no_names = [](const at::Tensor&) { return std::string(); };
  const auto traced = torch::jit::tracer::trace({example}, forward, no_names, /*strict=*/true,
                                                /*force_outplace=*/false, &module, {"x"});
  // As torch.jit.trace does for a module (_create_method_from_trace).
  torch::jit::Function* fn =
      cu->create_function(c10::QualifiedName(*module.type()->name(), "forward"), traced.first->graph);
  module.type()->addMethod(fn);
  return module;
}

}  // namespace da::inference
