#include "methods/fda.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "methods/entropy.h"
#include "methods/registry.h"

namespace da::methods {
namespace {

std::string shape_of(const torch::Tensor& t) {
  std::string out;
  for (const auto d : t.sizes()) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

}  // namespace

torch::Tensor fda_swap(const torch::Tensor& sources, const torch::Tensor& targets, double beta) {
  if (sources.dim() != 4 || sources.sizes() != targets.sizes()) {
    throw std::invalid_argument("fda: source and target images must have the same shape [B,C,H,W], got " +
                                shape_of(sources) + " and " + shape_of(targets));
  }
  const std::int64_t h = sources.size(2), w = sources.size(3);
  const auto b = static_cast<std::int64_t>(beta * static_cast<double>(std::min(h, w)));
  const std::int64_t ch = h / 2, cw = w / 2;
  const std::vector<std::int64_t> dims{-2, -1};
  const auto spectrum = at::fft_fftshift(at::fft_fft2(sources), dims);
  const auto target_amplitude = at::fft_fftshift(at::fft_fft2(targets), dims).abs();
  auto amplitude = spectrum.abs();
  const auto phase = at::angle(spectrum);
  using at::indexing::Slice;
  const auto rows = Slice(ch - b, ch + b + 1), cols = Slice(cw - b, cw + b + 1);
  amplitude.index_put_({Slice(), Slice(), rows, cols}, target_amplitude.index({Slice(), Slice(), rows, cols}));
  const auto mixed = at::polar(amplitude, phase);
  return at::real(at::fft_ifft2(at::fft_ifftshift(mixed, dims))).to(sources.scalar_type());
}

torch::Tensor fda_target_indices(std::int64_t sources, std::int64_t targets, std::int64_t seed, std::int64_t step) {
  // Distinct streams per step: seed and step mixed (golden-ratio odd constant).
  const auto mixed = static_cast<std::uint64_t>(seed) * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(step);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(mixed);
  return at::randint(targets, {sources}, generator, at::TensorOptions().dtype(at::kLong));
}

Fda::Fda(Params& params, const ModelInfo&) {
  beta_ = params.number("beta", 0.01,
                        {"half-width of the swapped low-frequency square, as a fraction of min(H, W)",
                         "Yang & Soatto 2020 (beta 0.01 of 0.01/0.05/0.09); YanchaoYang/FDA README: train.py "
                         "--LB=0.01"},
                        Range{0.0, 0.5, /*min_exclusive=*/true, false});
  seed_ = params.integer(
      "seed", 0, {"seed of the draw of each source image's target image", "ours: reproducible draws"}, 0);
  entropy_weight_ = params.number(
      "entropy_weight", 0.0,
      {"weight of the target predictions' mean entropy; 0 = no target loss",
       "paper: 0.005 (YanchaoYang/FDA README --entW=0.005) on a Charbonnier-penalised entropy (--ita=2.0); ours: "
       "0, as this term is the plain mean entropy, to which the paper's weight does not carry over"},
      Range::at_least(0.0));
}

void Fda::transform_batches(Batch& source, Batch& target, std::int64_t global_step) {
  if (!target.image.defined() || target.image.size(0) == 0) {
    throw std::invalid_argument("fda: the step has no target images to take the amplitude from");
  }
  const auto indices = fda_target_indices(source.image.size(0), target.image.size(0), seed_, global_step)
                           .to(target.image.device());
  torch::NoGradGuard no_grad;  // an input transform: nothing to differentiate
  source.image = fda_swap(source.image, target.image.index_select(0, indices), beta_);
}

DaLossOutput Fda::compute_da_loss(const StepInputs& step) {
  DaLossOutput out;
  if (entropy_weight_ > 0.0) {
    const auto entropy = mean_entropy(step.target_logits);
    out.loss = entropy_weight_ * entropy;
    out.logs = {{"entropy_loss", entropy}};
  } else {
    out.loss = torch::zeros({}, step.source_logits.options());
  }
  return out;
}

DA_REGISTER_METHOD("fda", Fda);

}  // namespace da::methods
