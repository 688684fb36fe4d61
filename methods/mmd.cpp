#include "methods/mmd.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "methods/feature_access.h"
#include "methods/registry.h"
#include "ranks/rank_sum.h"

namespace da::methods {
namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// kernel_alphas: every item a finite number > 0, at least one item. Errors
// name the item's YAML path.
std::vector<double> parse_alphas(Params& params) {
  const std::string key = "kernel_alphas";
  const auto items = params.list(
      key, {"0.125", "0.25", "0.5", "1", "2"},
      {"Gaussian kernels' bandwidth multipliers: sigma^2 = alpha * mean squared distance",
       "Transfer-Learning-Library dan.py GaussianKernel(alpha=2**k), k = -3..1 (they replaced our [0.5, 1, 2], "
       "which failed the two-moons sanity test: README)"});
  if (items.empty()) throw MethodError(params.path() + "." + key + ": expected at least one alpha, got an empty list");
  std::vector<double> alphas;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = params.path() + "." + key + "[" + std::to_string(i) + "]";
    const std::string text = trim(items[i]);
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) {
      throw MethodError(where + ": expected a number, got '" + items[i] + "'");
    }
    if (!(v > 0.0)) throw MethodError(where + ": value " + text + " is out of range, must be > 0");
    alphas.push_back(v);
  }
  return alphas;
}

}  // namespace

torch::Tensor mmd_loss(const torch::Tensor& source, const torch::Tensor& target, const std::vector<double>& alphas) {
  if (source.dim() != 2 || target.dim() != 2 || source.size(1) != target.size(1)) {
    throw std::invalid_argument("mmd: source and target features must be [B,C] with the same C, got " +
                                std::to_string(source.dim() == 2 ? source.size(1) : -1) + " and " +
                                std::to_string(target.dim() == 2 ? target.size(1) : -1) + " channels");
  }
  if (source.size(0) < 1 || target.size(0) < 1) throw std::invalid_argument("mmd: empty source or target batch");
  const std::int64_t ns = source.size(0);
  const auto x = torch::cat({source, target});
  // Squared pairwise distances |xi|^2 + |xj|^2 - 2 xi.xj as one matrix
  // product (no [n,n,C] difference tensor: 256 MiB for 128 samples a domain
  // of 512 channels), in float64 and then back to the features' type: in
  // float32 the cancellation made two ranks differ from one process by 3e-4.
  // A sample's distance to itself is 0 exactly; rounding below 0 is clamped.
  const auto x64 = x.to(torch::kFloat64);
  const auto sq = x64.pow(2).sum(1, /*keepdim=*/true);
  const auto d = (sq + sq.t() - 2.0 * x64.mm(x64.t())).clamp_min(0.0).fill_diagonal_(0.0).to(x.scalar_type());
  // Bandwidth from the batch, without gradient. sigma^2 is clamped away
  // from zero so that a batch of identical samples (D = 0) gives K = 1, not
  // 0/0; any other batch has mean(D) > 0 and is unaffected.
  const auto mean_d = d.detach().mean();
  torch::Tensor k;
  for (const double alpha : alphas) {
    const auto sigma2 = (alpha * mean_d).clamp_min(std::numeric_limits<float>::min());
    const auto term = torch::exp(-d / (2.0 * sigma2));
    k = k.defined() ? k + term : term;
  }
  const auto k_ss = k.slice(0, 0, ns).slice(1, 0, ns);
  const auto k_tt = k.slice(0, ns).slice(1, ns);
  const auto k_st = k.slice(0, 0, ns).slice(1, ns);
  return k_ss.mean() + k_tt.mean() - 2.0 * k_st.mean();
}

Mmd::Mmd(Params& params, const ModelInfo& model) {
  layer_ = read_feature_layer(params, model);
  alphas_ = parse_alphas(params);
}

DaLossOutput Mmd::compute_da_loss(const StepInputs& step) {
  // The global batch's features (see the header).
  const auto source =
      ranks::all_gather_rows(pooled_features(step.source_features, layer_, "source", "mmd"), collectives(), "mmd");
  const auto target =
      ranks::all_gather_rows(pooled_features(step.target_features, layer_, "target", "mmd"), collectives(), "mmd");
  DaLossOutput out;
  out.loss = mmd_loss(source, target, alphas_);
  out.logs = {{"mmd_loss", out.loss}};
  return out;
}

DA_REGISTER_METHOD("mmd", Mmd);

}  // namespace da::methods
