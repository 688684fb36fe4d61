// ADVENT's adversarial variant against PyTorch
// (tests/methods/make_advent_reference.py): the self-information maps, the
// domain loss and accuracy, and the gradients reaching both domains' logits
// (reversed and scaled by lambda) and the discriminator.
#include <gtest/gtest.h>

#include "method_test_support.h"
#include "methods/advent.h"
#include "methods/registry.h"
#include "support/python_reference.h"

namespace da::methods {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/methods/make_advent_reference.py");
  return values;
}

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test_support::expect_close(reference(), actual, name, tol);
}

using test_support::set_params;

std::unique_ptr<Method> make_advent(std::map<std::string, std::string> values) {
  ModelInfo model;
  model.classes = 3;
  return test_support::create("advent_adversarial", std::move(values), model);
}

TEST(Advent, SelfInformationMatchesPyTorch) {
  expect_close(self_information(test::det({1, 3, 2, 2}, 0.5, 4.0)), "advent.self_information");
}

TEST(Advent, LossAndGradientsMatchPyTorch) {
  for (const auto& [tag, lambda] : std::vector<std::pair<std::string, double>>{{"advent_l0.4", 0.4}, {"advent_l1", 1.0}}) {
    auto method = make_advent({{"ndf", "2"}});
    auto discriminator = method->module();
    discriminator->to(torch::kDouble);
    set_params(*discriminator);
    const auto source = test::det({2, 3, 32, 32}, 0.3, 3.0).requires_grad_();
    const auto target = test::det({2, 3, 32, 32}, 1.7, 2.0).requires_grad_();
    const Batch none;
    const FeatureMap no_features;
    StepInputs step{none, none, source, target, no_features, no_features};
    step.lambda = lambda;
    const auto out = method->compute_da_loss(step);
    out.loss.backward();
    expect_close(out.loss, tag + ".loss");
    EXPECT_NEAR(out.logs.at("domain_loss"), reference().at(tag + ".domain_loss").at(0), 1e-12);
    EXPECT_NEAR(out.logs.at("adversarial_loss"), reference().at(tag + ".adversarial_loss").at(0), 1e-12);
    EXPECT_DOUBLE_EQ(out.logs.at("domain_acc"), reference().at(tag + ".acc").at(0));
    // The source maps only train the discriminator.
    EXPECT_FALSE(source.grad().defined());
    // The gradients through five convolutions of small weights are ~1e-8:
    // compare them to an absolute 1e-16.
    expect_close(target.grad(), tag + ".grad_target", 1e-16);
    expect_close(discriminator->parameters().front().grad(), tag + ".grad_disc_first", 1e-14);
    ASSERT_EQ(method->extra_parameter_groups().size(), 1u);
    EXPECT_EQ(method->extra_parameter_groups()[0].params.size(), discriminator->parameters().size());
  }
}

TEST(Advent, TooSmallTilesAndBadParametersAreClearErrors) {
  auto method = make_advent({{"ndf", "2"}});
  const auto small = test::det({1, 3, 16, 16}, 0.1);
  const Batch none;
  const FeatureMap no_features;
  try {
    method->compute_da_loss(StepInputs{none, none, small, small, no_features, no_features});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("needs tiles of at least 32x32 pixels, got 16x16"), std::string::npos)
        << e.what();
  }
  try {
    make_advent({{"ndf", "0"}});
    FAIL() << "expected an error";
  } catch (const MethodError& e) {
    EXPECT_NE(std::string(e.what()).find("domain_adaptation.method.ndf"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace da::methods
