// What the configuration sets up for a run: the training and validation
// loader options, the run's length (epochs, max_steps, limit_train_batches,
// accumulation windows), and the methods (single, combined, plug-in, and
// every error).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/errors.h"
#include "config/loader.h"
#include "setup/loader_setup.h"
#include "setup/method_setup.h"
#include "support/process.h"
#include "trainer/training_length.h"

namespace da {
namespace {

TEST(LoaderSetup, TrainingAndValidationOptionsFromConfig) {
  const auto c = config::parse_config(R"(
data:
  batch_size: 6
  val_batch_size: 16
  workers: 3
  prefetch: 4
  max_open_shards: 16
  remainder: drop
  epoch_length: max
  bad_values: skip
  augmentation: {hflip: true, vflip: false, rot90: true, crop_size: 32}
  normalize: {mode: config, mean: [1, 2], std: [3, 4]}
)",
                                      "l.yaml");
  const auto train = setup::loader_options(c.data, 7, setup::LoaderRole::kTraining, false, 1, 4);
  EXPECT_EQ(train.batch_size, 6);
  EXPECT_EQ(train.workers, 3);
  EXPECT_EQ(train.prefetch, 4);
  EXPECT_EQ(train.max_open_shards, 16u);
  EXPECT_EQ(train.seed, 7u);
  EXPECT_TRUE(train.shuffle);
  EXPECT_EQ(train.remainder, io::Remainder::kDrop);
  EXPECT_EQ(train.rank, 1);
  EXPECT_EQ(train.world_size, 4);
  EXPECT_FALSE(train.load_masks);
  EXPECT_TRUE(train.augmentation.hflip);
  EXPECT_FALSE(train.augmentation.vflip);
  EXPECT_TRUE(train.augmentation.rot90);
  EXPECT_EQ(train.augmentation.crop_size, 32);
  EXPECT_EQ(train.normalization.mode, io::NormalizationMode::kConfig);
  EXPECT_EQ(train.normalization.std, (std::vector<double>{3, 4}));
  EXPECT_TRUE(train.skip_non_finite);

  const auto val = setup::loader_options(c.data, 7, setup::LoaderRole::kValidation, true, 1, 4);
  EXPECT_EQ(val.batch_size, 16);
  EXPECT_FALSE(val.shuffle);
  EXPECT_EQ(val.remainder, io::Remainder::kWrap);  // validation never drops a tile
  EXPECT_TRUE(val.load_masks);
  EXPECT_FALSE(val.augmentation.hflip || val.augmentation.rot90);
  EXPECT_EQ(val.augmentation.crop_size, 0);
  EXPECT_EQ(setup::epoch_length(c.data), io::EpochLength::kMax);
  EXPECT_EQ(setup::epoch_length(config::parse_config("", "d.yaml").data), io::EpochLength::kSource);
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
    setup::create_methods(config::parse_config(yaml, "m.yaml"), model_info());
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

// Lightning's bounds: max_epochs, max_steps (optimizer steps) and
// limit_train_batches, with accumulation windows cut by an epoch's end.
TEST(TrainingLength, EpochsStepsAndLimits) {
  config::RunOptions run;
  run.max_epochs = 4;
  const trainer::TrainingLength plain(5, run);
  EXPECT_EQ(plain.epochs(), 4);
  EXPECT_EQ(plain.batches_in_epoch(3), 5);
  EXPECT_EQ(plain.total_batches(), 20);
  EXPECT_EQ(plain.total_optimizer_steps(), 20);
  EXPECT_TRUE(plain.is_last_epoch(3));
  EXPECT_FALSE(plain.is_last_epoch(2));

  run.limit_train_batches = 3;
  const trainer::TrainingLength limited(5, run);
  EXPECT_EQ(limited.batches_per_epoch(), 3);
  EXPECT_EQ(limited.total_batches(), 12);
  run.limit_train_batches = 9;  // more than the loader has
  EXPECT_EQ(trainer::TrainingLength(5, run).batches_per_epoch(), 5);

  run.limit_train_batches = 0;
  run.max_steps = 7;  // epoch 1 stops after 2 of its 5 batches
  const trainer::TrainingLength capped(5, run);
  EXPECT_EQ(capped.epochs(), 2);
  EXPECT_EQ(capped.batches_in_epoch(0), 5);
  EXPECT_EQ(capped.batches_in_epoch(1), 2);
  EXPECT_EQ(capped.total_batches(), 7);
  EXPECT_TRUE(capped.is_last_epoch(1));
  run.max_steps = 100;  // max_epochs comes first
  EXPECT_EQ(trainer::TrainingLength(5, run).total_optimizer_steps(), 20);

  // Windows of 2 batches: 3 optimizer steps per epoch of 5 (the last window
  // is the epoch's fifth batch alone); 4 steps = one epoch and one window.
  run.accumulate_grad_batches = 2;
  run.max_steps = 4;
  const trainer::TrainingLength windows(5, run);
  EXPECT_EQ(windows.optimizer_steps_per_epoch(), 3);
  EXPECT_EQ(windows.epochs(), 2);
  EXPECT_EQ(windows.batches_in_epoch(1), 2);
  EXPECT_EQ(windows.total_batches(), 7);
  EXPECT_EQ(windows.total_optimizer_steps(), 4);

  EXPECT_THROW(trainer::TrainingLength(0, run), std::invalid_argument);
}

TEST(TrainingLength, ConfigRefusesZeroMaxSteps) {
  try {
    config::parse_config("run: {max_steps: 0}", "test");
    FAIL() << "max_steps 0 accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("run.max_steps: 0 would train nothing"), std::string::npos) << e.what();
  }
  EXPECT_EQ(config::parse_config("run: {max_steps: -1, limit_train_batches: 3}", "test").run.limit_train_batches, 3);
}

TEST(MethodSetup, SingleCombinedAndDefault) {
  auto none = setup::create_methods(config::parse_config("", "m.yaml"), model_info());
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].method->name(), "source_only");

  auto combined = setup::create_methods(
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
  EXPECT_EQ(setup_error("domain_adaptation: {method: {name: dannn}}"),
            "domain_adaptation.method.name: unknown method 'dannn', valid methods are 'adabn', 'advent_adversarial', 'bsp', "
            "'cdan', 'coral', 'dann', 'entropy', 'fda', 'mcc', 'mmd', 'mstn', 'pseudo_label' or 'source_only' "
            "(did you mean 'dann'?)");
  EXPECT_EQ(setup_error("domain_adaptation: {method: [{name: entropy}, {name: dann, hiden_size: 3}]}"),
            "domain_adaptation.method[1].hiden_size: unknown parameter; valid parameters are 'discriminator', "
            "'discriminator_lr', 'discriminator_weight_decay', 'hidden_size', 'in_channels', 'lambda_in_loss', "
            "'layer', 'layer_weights', 'layers', 'loss_weight'");
  EXPECT_EQ(setup_error("domain_adaptation: {method: {hidden_size: 3}}"),
            "domain_adaptation.method.name: missing (the method's name)");
  EXPECT_EQ(setup_error("domain_adaptation: {method: {name: entropy, loss_weight: -1}}"),
            "domain_adaptation.method.loss_weight: value -1 is out of range, must be >= 0");
  EXPECT_EQ(setup_error("plugins: [/nonexistent/libx.so]").rfind("plugins: cannot load '/nonexistent/libx.so': ", 0),
            0u);
}

TEST(MethodSetup, PluginRegistersItsMethod) {
  const std::string plugin = test::binary_path("tests/trainer/plugin/libda_example_plugin.so");
  auto methods = setup::create_methods(
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
