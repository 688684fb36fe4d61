#include "ranks/rank_sum.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>
#include <vector>

namespace da::ranks {
namespace {

class SingleRank : public RankSum {
 public:
  void all_reduce_sum(at::Tensor&) override {}
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
};

class AllReduceSum : public torch::autograd::Function<AllReduceSum> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, RankSum* ranks) {
    ctx->saved_data["ranks"] = reinterpret_cast<std::int64_t>(ranks);
    at::Tensor out = input.clone();
    ranks->all_reduce_sum(out);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* ranks = reinterpret_cast<RankSum*>(ctx->saved_data["ranks"].toInt());
    at::Tensor grad = grads[0].contiguous().clone();
    ranks->all_reduce_sum(grad);
    return {grad, at::Tensor()};
  }
};

}  // namespace

std::shared_ptr<RankSum> single_rank() {
  static const auto one = std::make_shared<SingleRank>();
  return one;
}

at::Tensor all_reduce_sum(const at::Tensor& input, RankSum& ranks) {
  return AllReduceSum::apply(input, &ranks);
}

at::Tensor all_gather_rows(const at::Tensor& rows, RankSum& ranks, const std::string& what) {
  if (rows.dim() < 1) throw std::invalid_argument(what + ": cannot gather the rows of a scalar over the ranks");
  const int world = ranks.world_size();
  if (world == 1) return rows;
  const int rank = ranks.rank();
  std::int64_t row_size = 1;
  for (std::int64_t d = 1; d < rows.dim(); ++d) row_size *= rows.size(d);
  // Every rank's row count and row size, so that every rank knows the layout
  // (and every rank throws alike on a mismatch: none is left waiting).
  auto layout = at::zeros({world, 2}, at::kLong);
  layout[rank][0] = rows.size(0);
  layout[rank][1] = row_size;
  ranks.all_reduce_sum(layout);
  const auto counts = layout.select(1, 0), sizes = layout.select(1, 1);
  if (!sizes.eq(row_size).all().item<bool>()) {
    throw std::invalid_argument(what + ": the ranks hold rows of different sizes (" +
                                std::to_string(sizes.min().item<std::int64_t>()) + " and " +
                                std::to_string(sizes.max().item<std::int64_t>()) + " values), cannot gather them");
  }
  const std::int64_t before = counts.slice(0, 0, rank).sum().item<std::int64_t>();
  const std::int64_t after = counts.slice(0, rank + 1).sum().item<std::int64_t>();
  auto zeros = [&](std::int64_t n) {
    std::vector<std::int64_t> shape = rows.sizes().vec();
    shape[0] = n;
    return at::zeros(shape, rows.options());
  };
  return all_reduce_sum(at::cat({zeros(before), rows, zeros(after)}), ranks);
}

}  // namespace da::ranks
