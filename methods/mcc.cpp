#include "methods/mcc.h"

#include <ATen/CPUGeneratorImpl.h>

#include <vector>

#include "methods/registry.h"
#include "ranks/rank_sum.h"

namespace da::methods {

torch::Tensor mcc_loss(const torch::Tensor& logits, double temperature) {
  TORCH_CHECK(logits.dim() == 2, "mcc_loss: expected logits [N,K], got ", logits.sizes());
  const auto n = logits.size(0);
  const auto k = logits.size(1);
  const auto p = torch::softmax(logits / temperature, 1);
  // tllib's entropy(): epsilon 1e-5 inside the log; detached.
  const auto h = (-p * torch::log(p + 1e-5)).sum(1).detach();
  auto w = 1 + torch::exp(-h);
  w = (double(n) * w / w.sum()).unsqueeze(1);
  auto confusion = torch::mm((p * w).transpose(1, 0), p);
  // As tllib writes it: confusion / confusion.sum(dim=1) broadcasts the
  // [K] row sums along the last dimension, so column j is divided by the sum
  // of row j (not each row by its own sum). Kept on purpose to reproduce tllib.
  // (C = P^T W P is symmetric, so this is the transpose of the row-normalised
  // matrix: same sum and trace, the loss and its gradient are the same either way.)
  confusion = confusion / confusion.sum(1);
  return (confusion.sum() - confusion.trace()) / double(k);
}

namespace {

// splitmix64's output function.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

}  // namespace

std::uint64_t mcc_sample_seed(std::int64_t seed, std::int64_t global_step) {
  return mix64(std::uint64_t(seed) + kGolden * (std::uint64_t(global_step) + 1));
}

std::uint64_t mcc_image_seed(std::int64_t seed, std::int64_t global_step, std::int64_t image) {
  return mix64(mcc_sample_seed(seed, global_step) + kGolden * (std::uint64_t(image) + 1));
}

torch::Tensor mcc_sample_pixels(std::int64_t batch, std::int64_t pixels, std::int64_t per_image, std::int64_t seed,
                                std::int64_t global_step, int rank, int world_size) {
  TORCH_CHECK(per_image > 0 && per_image <= pixels, "mcc_sample_pixels: per_image ", per_image,
              " must be in [1, ", pixels, "]");
  TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "mcc_sample_pixels: rank ", rank,
              " out of range for a world of ", world_size);
  std::vector<torch::Tensor> rows;
  rows.reserve(std::size_t(batch));
  for (std::int64_t b = 0; b < batch; ++b) {
    // One generator per image, seeded by the image's place in the global
    // batch: the sample does not depend on how the batch is split over ranks.
    auto generator = at::make_generator<at::CPUGeneratorImpl>(mcc_image_seed(seed, global_step, b * world_size + rank));
    rows.push_back(torch::randperm(pixels, generator, torch::kLong).slice(0, 0, per_image));
  }
  return torch::stack(rows);
}

torch::Tensor mcc_pixel_samples(const torch::Tensor& logits, std::int64_t per_image, std::int64_t seed,
                                std::int64_t global_step, int rank, int world_size) {
  TORCH_CHECK(logits.dim() == 4, "mcc: expected target logits [B,K,H,W], got ", logits.sizes());
  const auto batch = logits.size(0), classes = logits.size(1);
  const auto pixels = logits.size(2) * logits.size(3);
  const auto flat = logits.reshape({batch, classes, pixels});
  if (per_image == 0 || per_image >= pixels) return flat.permute({0, 2, 1}).reshape({-1, classes});
  const auto index =
      mcc_sample_pixels(batch, pixels, per_image, seed, global_step, rank, world_size).to(logits.device());
  const auto picked = flat.gather(2, index.unsqueeze(1).expand({batch, classes, per_image}));  // [B,K,n]
  return picked.permute({0, 2, 1}).reshape({-1, classes});
}

MinimumClassConfusion::MinimumClassConfusion(Params& params, const ModelInfo&) {
  temperature_ = params.number(
      "temperature", 2.5,
      {"softmax temperature T of the class confusion",
       "Transfer-Learning-Library (the authors' lab) mcc.py --temperature 2.5"},
      Range::greater_than(0.0));
  pixels_per_image_ = params.integer(
      "pixels_per_image", 1024,
      {"target pixels sampled per image as MCC's samples; 0 = all",
       "ours: MCC takes one sample per image; a pixel sample bounds the logits gathered from every rank"},
      0);
  seed_ = params.integer("seed", 0, {"seed of the pixel sample", "ours: reproducible samples"}, 0);
}

DaLossOutput MinimumClassConfusion::compute_da_loss(const StepInputs& step) {
  ranks::RankSum& world = collectives();
  const auto local = mcc_pixel_samples(step.target_logits, pixels_per_image_, seed_, step.global_step, world.rank(),
                                       world.world_size());
  // The loss of the global batch's samples (see the header).
  const auto samples = ranks::all_gather_rows(local, world, "mcc");
  DaLossOutput out;
  out.loss = mcc_loss(samples, temperature_);
  out.logs = {{"mcc_loss", out.loss}};
  return out;
}

DA_REGISTER_METHOD("mcc", MinimumClassConfusion);

}  // namespace da::methods
