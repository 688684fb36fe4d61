#include "methods/gradient_reversal.h"

#include <torch/autograd.h>

namespace da::methods {
namespace {

struct GradientReversal : public torch::autograd::Function<GradientReversal> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double lambda) {
    ctx->saved_data["lambda"] = lambda;
    return x.view_as(x);  // a new tensor, so the backward below is attached
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const double lambda = ctx->saved_data["lambda"].toDouble();
    return {grads[0] * -lambda, torch::Tensor()};
  }
};

}  // namespace

at::Tensor gradient_reversal(const at::Tensor& x, double lambda) { return GradientReversal::apply(x, lambda); }

}  // namespace da::methods
