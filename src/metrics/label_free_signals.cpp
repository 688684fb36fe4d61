#include "metrics/label_free_signals.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace da::metrics {
namespace {

constexpr std::int64_t kHeader = 2;  // entropy sum, pixels
// SND's similarity rows are taken this many at a time (16 MiB of float64
// with 4096 samples), so the whole N x N matrix is never held.
constexpr std::int64_t kSndRowChunk = 512;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace

LabelFreeSignals::LabelFreeSignals(std::int64_t classes, std::int64_t tiles, std::int64_t tile_pixels)
    : classes_(classes), tiles_(tiles), tile_pixels_(tile_pixels) {
  if (classes < 2 || tiles < 1 || tile_pixels < 1) {
    throw std::invalid_argument("LabelFreeSignals: needs 2+ classes, 1+ tiles and 1+ pixels a tile");
  }
  tile_stride_ = std::max<std::int64_t>(1, ceil_div(tiles, kSndMaxSamples));
  const std::int64_t sampled_tiles = ceil_div(tiles, tile_stride_);
  samples_per_tile_ = std::clamp<std::int64_t>(kSndMaxSamples / sampled_tiles, 1, tile_pixels);
  sums_ = at::zeros({kHeader + classes + sampled_tiles * samples_per_tile_ * classes}, at::kDouble);
}

void LabelFreeSignals::add(const at::Tensor& logits, const std::vector<std::int64_t>& tiles) {
  if (logits.dim() != 4 || logits.size(1) != classes_ || logits.size(0) != static_cast<std::int64_t>(tiles.size()) ||
      logits.size(2) * logits.size(3) != tile_pixels_) {
    throw std::invalid_argument("LabelFreeSignals::add: logits must be [tiles, classes, H, W] of the declared size");
  }
  // Float64 stays float64 (tests against Python); anything else (bf16 under
  // autocast) is computed in float32.
  const at::Tensor x = logits.scalar_type() == at::kDouble ? logits : logits.to(at::kFloat);
  const at::Tensor log_p = at::log_softmax(x, 1);
  const at::Tensor p = log_p.exp();
  const at::Tensor entropy_sum = -(p * log_p).sum().to(at::kDouble).reshape({1});
  const at::Tensor predicted = at::bincount(p.argmax(1).reshape(-1), {}, classes_).to(at::kDouble);

  // The sampled tiles' evenly spaced pixels, [n, samples_per_tile, K].
  std::vector<std::int64_t> rows;
  std::vector<std::int64_t> slots;
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    if (tiles[i] < 0 || tiles[i] >= tiles_) throw std::out_of_range("LabelFreeSignals::add: tile index out of range");
    if (tiles[i] % tile_stride_ == 0) {
      rows.push_back(static_cast<std::int64_t>(i));
      slots.push_back(tiles[i] / tile_stride_);
    }
  }
  at::Tensor sampled;
  if (!rows.empty()) {
    const auto on = at::TensorOptions().dtype(at::kLong).device(p.device());
    const at::Tensor pixels = at::floor_divide(at::arange(samples_per_tile_, on) * tile_pixels_, samples_per_tile_);
    sampled = p.index_select(0, at::tensor(rows, at::kLong).to(p.device()))
                  .flatten(2)
                  .index_select(2, pixels)
                  .transpose(1, 2)
                  .to(at::kDouble);
  }
  // One copy to the host for the whole batch.
  const at::Tensor header = at::cat({entropy_sum, at::full({1}, static_cast<double>(p.numel() / classes_),
                                                           entropy_sum.options()),
                                     predicted})
                                .cpu();
  sums_.narrow(0, 0, kHeader + classes_) += header;
  if (!rows.empty()) {
    const at::Tensor host = sampled.cpu();
    const std::int64_t block = samples_per_tile_ * classes_;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      sums_.narrow(0, kHeader + classes_ + slots[i] * block, block) += host[static_cast<std::int64_t>(i)].reshape(-1);
    }
  }
}

std::map<std::string, double> LabelFreeSignals::scores(const at::Tensor& source_label_counts) const {
  const double pixels = sums_[1].item<double>();
  if (pixels <= 0) return {};
  std::map<std::string, double> out;
  out["unsup/target_entropy"] = sums_[0].item<double>() / pixels / std::log(static_cast<double>(classes_));
  const at::Tensor predicted = sums_.narrow(0, kHeader, classes_) / pixels;
  if (source_label_counts.defined()) {
    const at::Tensor source = source_label_counts.to(at::kDouble).cpu();
    const double total = source.sum().item<double>();
    if (total > 0) out["unsup/class_prior_gap"] = 0.5 * (predicted - source / total).abs().sum().item<double>();
  }
  const std::int64_t offset = kHeader + classes_;
  out["unsup/snd"] = soft_neighborhood_density(sums_.narrow(0, offset, sums_.numel() - offset).view({-1, classes_}));
  return out;
}

double soft_neighborhood_density(const at::Tensor& probabilities, double temperature) {
  const std::int64_t n = probabilities.size(0);
  if (n < 2) return std::nan("");
  const at::Tensor f = probabilities.to(at::kDouble);
  const at::Tensor normalized = f / f.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  double entropy_sum = 0;
  for (std::int64_t start = 0; start < n; start += kSndRowChunk) {
    const std::int64_t rows = std::min(kSndRowChunk, n - start);
    at::Tensor similarity = normalized.narrow(0, start, rows).mm(normalized.t()) / temperature;
    // Each sample's own similarity (1/temperature) is replaced by the lowest
    // possible one, so a sample is not its own neighbour.
    similarity.diagonal(/*offset=*/start, 0, 1).fill_(-1.0 / temperature);
    const at::Tensor neighbours = at::softmax(similarity, 1);
    entropy_sum += -(neighbours * (neighbours + 1e-5).log()).sum().item<double>();
  }
  return entropy_sum / static_cast<double>(n);
}

}  // namespace da::metrics
