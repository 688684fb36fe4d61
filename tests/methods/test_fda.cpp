// FDA against PyTorch (tests/methods/make_fda_reference.py): the amplitude
// swap as the authors' low_freq_mutate_np computes it, the reproducible
// choice of target images, and the method's hook replacing only the source
// images.
#include <gtest/gtest.h>

#include "methods/entropy.h"
#include "methods/fda.h"
#include "methods/registry.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_fda_reference.py");
  return values;
}

torch::Tensor sources() { return test::det({2, 3, 8, 10}, 0.2, 2.0) + 0.5; }
torch::Tensor targets() { return test::det({2, 3, 8, 10}, 1.3, 1.0) - 0.25; }

std::unique_ptr<Method> make_fda(std::map<std::string, std::string> values) {
  Params params(std::move(values), "domain_adaptation.method");
  return Registry::instance().create("fda", params, ModelInfo{});
}

TEST(Fda, AmplitudeSwapMatchesTheAuthorsFormula) {
  test::expect_close(fda_swap(sources(), targets(), 0.25), reference().at("fda_b0.25.swap"), "fda_b0.25.swap");
  test::expect_close(fda_swap(sources(), targets(), 0.01), reference().at("fda_b0.01.swap"), "fda_b0.01.swap");
}

TEST(Fda, KnownImages) {
  // Its own amplitude changes nothing.
  EXPECT_LT((fda_swap(sources(), sources(), 0.25) - sources()).abs().max().item<double>(), 1e-12);
  // beta 0.01 on 8 pixels swaps only the zero frequency: the source takes
  // the target's mean (in magnitude; both means here are positive) and keeps
  // everything else.
  const auto src = sources();
  const auto trg = targets().abs() + 1.0;
  const auto mixed = fda_swap(src, trg, 0.01);
  const auto src_mean = src.mean({2, 3}, true);
  EXPECT_LT((mixed.mean({2, 3}, true) - trg.mean({2, 3}, true)).abs().max().item<double>(), 1e-12);
  EXPECT_LT(((mixed - mixed.mean({2, 3}, true)) - (src - src_mean)).abs().max().item<double>(), 1e-12);
}

TEST(Fda, TargetIndicesAreThePythonGeneratorsDraws) {
  test::expect_close(fda_target_indices(5, 3, 7, 11), reference().at("fda.indices_7_11"), "fda.indices_7_11");
  EXPECT_FALSE(at::equal(fda_target_indices(64, 3, 7, 11), fda_target_indices(64, 3, 7, 12)));
}

TEST(Fda, HookReplacesSourceImagesOnly) {
  auto method = make_fda({{"beta", "0.25"}, {"seed", "7"}});
  Batch source{sources(), at::arange(2 * 8 * 10, at::kLong).reshape({2, 8, 10})};
  Batch target{targets(), at::Tensor()};
  const auto mask = source.mask.clone();
  method->transform_batches(source, target, 11);
  const auto expected = fda_swap(sources(), targets().index_select(0, fda_target_indices(2, 2, 7, 11)), 0.25);
  EXPECT_LT((source.image - expected).abs().max().item<double>(), 1e-12);
  EXPECT_TRUE(at::equal(source.mask, mask));
  EXPECT_TRUE(at::equal(target.image, targets()));
}

TEST(Fda, OptionalTargetEntropyAndErrors) {
  const auto logits = test::det({2, 3, 4, 4}, 0.2, 2.0);
  const Batch none;
  const FeatureMap no_features;
  const StepInputs step{none, none, logits, logits, no_features, no_features};
  auto with_entropy = make_fda({{"entropy_weight", "0.5"}});
  EXPECT_NEAR(with_entropy->compute_da_loss(step).loss.item<double>(), 0.5 * mean_entropy(logits).item<double>(),
              1e-12);
  EXPECT_EQ(make_fda({})->compute_da_loss(step).loss.item<double>(), 0.0);

  for (const auto& [value, message] : std::vector<std::pair<std::string, std::string>>{
           {"0", "domain_adaptation.method.beta: value 0 is out of range, must be > 0, <= 0.5"},
           {"0.6", "domain_adaptation.method.beta: value 0.6 is out of range"}}) {
    try {
      make_fda({{"beta", value}});
      FAIL() << "expected an error for beta " << value;
    } catch (const MethodError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  try {
    fda_swap(sources(), test::det({2, 3, 8, 8}, 0.1), 0.1);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("got 2x3x8x10 and 2x3x8x8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace da::methods
