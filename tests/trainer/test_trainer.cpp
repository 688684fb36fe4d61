// Trainer building blocks: metrics from a known confusion matrix, learning-
// rate schedules, and methods created from the configuration (single,
// combined, plug-in, and every error).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "config/errors.h"
#include "config/loader.h"
#include "metrics/confusion_matrix.h"
#include "support/process.h"
#include "trainer/lr_schedule.h"
#include "trainer/method_setup.h"

namespace da {
namespace {

TEST(Metrics, KnownConfusionMatrix) {
  // Rows are true classes, columns predictions:
  //   [[5,1,0],[2,3,1],[0,0,4]] plus 3 ignored pixels.
  const std::vector<std::int64_t> truth{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 255, 255, 255};
  const std::vector<std::int64_t> pred{0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 1, 0, 2};
  metrics::ConfusionMatrix cm(3);
  cm.add_predictions(at::tensor(pred).reshape({1, 1, 19}), at::tensor(truth).reshape({1, 1, 19}), 255);
  EXPECT_TRUE(at::equal(cm.counts(), at::tensor(std::vector<std::int64_t>{5, 1, 0, 2, 3, 1, 0, 0, 4}).reshape({3, 3})));
  const auto s = metrics::compute_scores(cm.counts());
  EXPECT_EQ(s.pixels, 16);
  EXPECT_DOUBLE_EQ(s.iou[0], 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.iou[1], 3.0 / 7.0);
  EXPECT_DOUBLE_EQ(s.iou[2], 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(s.miou, (5.0 / 8 + 3.0 / 7 + 4.0 / 5) / 3);
  EXPECT_DOUBLE_EQ(s.f1[0], 10.0 / 13.0);
  EXPECT_DOUBLE_EQ(s.f1[1], 0.6);
  EXPECT_DOUBLE_EQ(s.f1[2], 8.0 / 9.0);
  EXPECT_DOUBLE_EQ(s.overall_accuracy, 0.75);
  const auto logs = metrics::score_logs(s, "target_val", {"bg", "building", "road"});
  EXPECT_DOUBLE_EQ(logs.at("iou/target_val"), s.miou);
  EXPECT_DOUBLE_EQ(logs.at("iou_road/target_val"), 0.8);
  EXPECT_DOUBLE_EQ(logs.at("acc/target_val"), 0.75);
}

TEST(Metrics, FromLogitsAndAbsentClass) {
  // Class 2 is neither present nor predicted: its IoU is undefined and the
  // mean is over classes 0 and 1 only.
  const auto logits = at::tensor(std::vector<double>{5, 0, 5, 0, 0, 5, 0, 5, 0, 0, 0, 0}).reshape({1, 3, 2, 2});
  const auto masks = at::tensor(std::vector<std::int64_t>{0, 0, 1, 1}).reshape({1, 2, 2});
  metrics::ConfusionMatrix cm(3);
  cm.add_logits(logits, masks, 255);
  const auto s = metrics::compute_scores(cm.counts());
  // predictions 0, 1, 0, 1 against truth 0, 0, 1, 1: one hit and two errors per class
  EXPECT_DOUBLE_EQ(s.iou[0], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.iou[1], 1.0 / 3.0);
  EXPECT_TRUE(std::isnan(s.iou[2]));
  EXPECT_DOUBLE_EQ(s.miou, 1.0 / 3.0);
  EXPECT_THROW(cm.add_predictions(at::zeros({1, 2}, at::kLong), at::full({1, 2}, 7, at::kLong), 255),
               std::out_of_range);
}

TEST(LrSchedule, Values) {
  trainer::LrSchedule poly{"poly", 0, 0.9, 0.0, 100};
  EXPECT_DOUBLE_EQ(poly.factor(0), 1.0);
  EXPECT_DOUBLE_EQ(poly.factor(50), std::pow(0.5, 0.9));
  EXPECT_DOUBLE_EQ(poly.factor(100), 0.0);
  trainer::LrSchedule cosine{"cosine", 10, 0.9, 0.1, 110};
  EXPECT_DOUBLE_EQ(cosine.factor(0), 1.0 / 11.0);   // warm-up
  EXPECT_DOUBLE_EQ(cosine.factor(9), 10.0 / 11.0);
  EXPECT_DOUBLE_EQ(cosine.factor(10), 1.0);
  EXPECT_DOUBLE_EQ(cosine.factor(60), 0.1 + 0.9 * 0.5);
  EXPECT_NEAR(cosine.factor(110), 0.1, 1e-15);
  EXPECT_DOUBLE_EQ((trainer::LrSchedule{"constant", 0, 0.9, 0, 10}.factor(7)), 1.0);
}

methods::ModelInfo model_info() {
  methods::ModelInfo info;
  info.classes = 4;
  info.feature_layers = {"encoder.layer4"};
  info.channels = [](const std::string& name) -> std::int64_t { return name == "encoder.layer4" ? 64 : 32; };
  return info;
}

std::string setup_error(const std::string& yaml) {
  try {
    trainer::create_methods(config::parse_config(yaml, "m.yaml"), model_info());
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(MethodSetup, SingleCombinedAndDefault) {
  auto none = trainer::create_methods(config::parse_config("", "m.yaml"), model_info());
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].method->name(), "source_only");

  auto combined = trainer::create_methods(
      config::parse_config("domain_adaptation:\n  method:\n    - {name: dann, hidden_size: 16}\n"
                           "    - {name: entropy, loss_weight: 0.01}\n",
                           "m.yaml"),
      model_info());
  ASSERT_EQ(combined.size(), 2u);
  EXPECT_EQ(combined[0].method->name(), "dann");
  EXPECT_DOUBLE_EQ(combined[0].loss_weight, 1.0);
  EXPECT_EQ(combined[0].method->feature_layers(), (std::vector<std::string>{"encoder.layer4"}));
  // in_channels defaulted from the model's encoder.layer4 (64 channels)
  EXPECT_EQ(combined[0].method->module()->parameters()[0].sizes(), (std::vector<std::int64_t>{16, 64}));
  EXPECT_EQ(combined[1].method->name(), "entropy");
  EXPECT_DOUBLE_EQ(combined[1].loss_weight, 0.01);
}

TEST(MethodSetup, Errors) {
  EXPECT_EQ(setup_error("domain_adaptation: {method: {name: dan}}"),
            "domain_adaptation.method.name: unknown method 'dan', valid methods are 'dann', 'entropy', "
            "'pseudo_label' or 'source_only' (did you mean 'dann'?)");
  EXPECT_EQ(setup_error("domain_adaptation: {method: [{name: entropy}, {name: dann, hiden_size: 3}]}"),
            "domain_adaptation.method[1].hiden_size: unknown parameter; valid parameters are 'discriminator', "
            "'discriminator_lr', 'discriminator_weight_decay', 'hidden_size', 'in_channels', 'lambda_in_loss', "
            "'layer', 'loss_weight'");
  EXPECT_EQ(setup_error("domain_adaptation: {method: {hidden_size: 3}}"),
            "domain_adaptation.method.name: missing (the method's name)");
  EXPECT_EQ(setup_error("domain_adaptation: {method: {name: entropy, loss_weight: -1}}"),
            "domain_adaptation.method.loss_weight: value -1 is out of range, must be >= 0");
  EXPECT_EQ(setup_error("plugins: [/nonexistent/libx.so]").rfind("plugins: cannot load '/nonexistent/libx.so': ", 0),
            0u);
}

TEST(MethodSetup, PluginRegistersItsMethod) {
  const std::string plugin = test::binary_path("tests/trainer/plugin/libda_example_plugin.so");
  auto methods = trainer::create_methods(
      config::parse_config("plugins: [" + plugin + "]\ndomain_adaptation: {method: {name: example_max_prob_gap, "
                           "margin: 0.8}}\n",
                           "m.yaml"),
      model_info());
  ASSERT_EQ(methods.size(), 1u);
  EXPECT_EQ(methods[0].method->name(), "example_max_prob_gap");
  // Two pixels, two classes: top probabilities 0.5 and sigmoid(2) ~ 0.881;
  // the loss is mean(max(0, 0.8 - top)) = 0.15.
  const auto logits = at::tensor(std::vector<double>{0, 2, 0, 0}).reshape({1, 2, 1, 2});
  methods::Batch none;
  const methods::FeatureMap empty;
  const auto out = methods[0].method->compute_da_loss(methods::StepInputs{none, none, logits, logits, empty, empty});
  EXPECT_NEAR(out.loss.item<double>(), 0.15, 1e-12);
}

}  // namespace
}  // namespace da
