// Trainer building blocks: metrics from a known confusion matrix, learning-
// rate schedules, and methods created from the configuration (single,
// combined, plug-in, and every error).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <sstream>

#include "config/errors.h"
#include "config/loader.h"
#include "metrics/confusion_matrix.h"
#include "metrics/label_free_signals.h"
#include "setup/loader_setup.h"
#include "setup/method_setup.h"
#include "support/process.h"
#include "support/python_reference.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer_setup.h"
#include "trainer/segmentation_loss.h"
#include "trainer/training_length.h"

namespace da {
namespace {

const test::Reference& reference() {
  static const test::Reference values = test::run_reference_script("tests/trainer/make_trainer_reference.py");
  return values;
}

using test::det;

void expect_close(const at::Tensor& actual, const std::string& name, double tol = 1e-10) {
  test::expect_close(actual, reference().at(name), name, tol);
}

at::Tensor reference_masks() {
  auto m = (at::arange(2 * 4 * 4, at::kLong) * 7).remainder(3).reshape({2, 4, 4});
  m.index_put_({0, 0, at::indexing::Slice(0, 2)}, 255);
  return m;
}

void check_segmentation_loss(const std::string& tag, double dice_weight) {
  const auto logits = det({2, 3, 4, 4}, 0.4, 2.0).requires_grad_();
  const trainer::SegmentationLoss loss_fn{255, dice_weight};
  const auto loss = loss_fn(logits, reference_masks());
  loss.backward();
  expect_close(loss, tag + ".loss");
  expect_close(logits.grad(), tag + ".grad");
}

TEST(SegmentationLoss, CrossEntropyWithIgnoreMatchesPyTorch) { check_segmentation_loss("seg_ce", 0.0); }

TEST(SegmentationLoss, WithDiceMatchesPyTorch) { check_segmentation_loss("seg_ce_dice", 0.5); }

// Two steps over two parameter groups (the second with its own rate) with
// fixed gradients: the parameters equal PyTorch's.
void check_optimizer(const std::string& tag, const config::OptimizerOptions& options, double second_lr) {
  auto a = det({3, 2}, 0.1).requires_grad_();
  auto b = det({4}, 0.9).requires_grad_();
  trainer::OptimizerSetup setup(options, {a}, {methods::ParamGroup{"disc", {b}, second_lr, std::nullopt}});
  EXPECT_EQ(setup.group_names(), (std::vector<std::string>{"model", "disc"}));
  for (int step = 0; step < 2; ++step) {
    setup.optimizer().zero_grad();
    a.mutable_grad() = det({3, 2}, 1.3 + step).clone();  // not a view: zero_grad detaches in place
    b.mutable_grad() = det({4}, 2.1 + step, 0.5).clone();
    setup.optimizer().step();
  }
  expect_close(a, tag + ".a", 1e-9);
  expect_close(b, tag + ".b", 1e-9);
}

TEST(Optimizer, SgdNesterovWithGroupsMatchesPyTorch) {
  config::OptimizerOptions o;
  o.name = "sgd";
  o.lr = 0.1;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 0.01;
  check_optimizer("sgd", o, 0.5);
}

TEST(Optimizer, AdamWWithGroupsMatchesPyTorch) {
  config::OptimizerOptions o;
  o.name = "adamw";
  o.lr = 0.01;
  o.betas = {0.8, 0.99};
  o.eps = 1e-6;
  o.weight_decay = 0.1;
  check_optimizer("adamw", o, 0.05);
}

TEST(Optimizer, ScheduleScalesEveryGroupAndClipping) {
  config::OptimizerOptions o;
  o.lr = 0.2;
  auto a = at::ones({2}, at::kDouble).requires_grad_();
  auto b = at::ones({1}, at::kDouble).requires_grad_();
  trainer::OptimizerSetup setup(o, {a}, {methods::ParamGroup{"disc", {b}, 1.0, std::nullopt}});
  setup.apply_schedule(trainer::LrSchedule{"poly", 0, 1.0, 0.0, 10}, 5);
  EXPECT_DOUBLE_EQ(setup.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(setup.lr(1), 0.5);
  a.mutable_grad() = at::full({2}, 3.0, at::kDouble);
  b.mutable_grad() = at::full({1}, 4.0, at::kDouble);  // global norm sqrt(9+9+16) = sqrt(34)
  EXPECT_NEAR(setup.clip_gradients(0.0).item<double>(), std::sqrt(34.0), 1e-12);
  EXPECT_NEAR(setup.clip_gradients(1.0).item<double>(), std::sqrt(34.0), 1e-12);
  EXPECT_NEAR(at::cat({a.grad(), b.grad()}).norm().item<double>(), 1.0, 1e-6);
}

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

// The label-free signals of `logits` [tiles, K, H, W], its tiles split over
// two "ranks" (even and odd tiles, in batches of up to 3) whose sums are
// added, as the trainer's all-reduce adds them.
std::map<std::string, double> label_free_scores(const at::Tensor& logits, const at::Tensor& source_labels,
                                                metrics::LabelFreeSignals* one = nullptr) {
  const std::int64_t tiles = logits.size(0);
  const std::int64_t pixels = logits.size(2) * logits.size(3);
  metrics::LabelFreeSignals rank0(logits.size(1), tiles, pixels);
  metrics::LabelFreeSignals rank1(logits.size(1), tiles, pixels);
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<std::int64_t> batch;
    auto flush = [&] {
      if (batch.empty()) return;
      (rank == 0 ? rank0 : rank1).add(logits.index_select(0, at::tensor(batch, at::kLong)), batch);
      batch.clear();
    };
    for (std::int64_t t = rank; t < tiles; t += 2) {
      batch.push_back(t);
      if (batch.size() == 3) flush();
    }
    flush();
  }
  rank0.sums() += rank1.sums();
  if (one) *one = rank0;
  return rank0.scores(source_labels);
}

TEST(LabelFreeSignals, EntropyPriorGapAndSndMatchPyTorch) {
  const auto logits = det({3, 3, 4, 4}, 0.9, 3.0);
  const auto scores = label_free_scores(logits, at::tensor(std::vector<double>{5, 9, 3}));
  EXPECT_NEAR(scores.at("unsup/target_entropy"), reference().at("signals.entropy")[0], 1e-12);
  EXPECT_NEAR(scores.at("unsup/class_prior_gap"), reference().at("signals.prior_gap")[0], 1e-12);
  EXPECT_NEAR(scores.at("unsup/snd"), reference().at("signals.snd")[0], 1e-10);
  // Without source labels there is no prior to compare with.
  EXPECT_EQ(label_free_scores(logits, at::Tensor()).count("unsup/class_prior_gap"), 0U);
}

TEST(LabelFreeSignals, SndSamplesEvenlySpacedPixelsAndEveryNthTileOfLargeSets) {
  metrics::LabelFreeSignals spaced(3, 1, 1);
  const auto spaced_scores = label_free_scores(det({1100, 3, 2, 2}, 0.2, 2.0), at::Tensor(), &spaced);
  EXPECT_EQ(spaced.samples_per_tile(), 3);
  EXPECT_EQ(spaced.tile_stride(), 1);
  EXPECT_NEAR(spaced_scores.at("unsup/snd"), reference().at("signals.snd_spaced")[0], 1e-10);
  metrics::LabelFreeSignals strided(3, 1, 1);
  const auto strided_scores = label_free_scores(det({5000, 3, 1, 1}, 0.5, 2.0), at::Tensor(), &strided);
  EXPECT_EQ(strided.samples_per_tile(), 1);
  EXPECT_EQ(strided.tile_stride(), 2);
  EXPECT_NEAR(strided_scores.at("unsup/snd"), reference().at("signals.snd_strided")[0], 1e-10);
}

TEST(LabelFreeSignals, SndIsTheLogOfTheNeighbourhoodSize) {
  // Each sample's neighbour distribution is uniform over the samples equal to
  // it (similarity 1/T = 20) and next to nothing elsewhere (0, or the
  // diagonal's -20): n equal samples give log(n - 1); two orthogonal
  // clusters of m, log(m - 1) (the other cluster's m weigh e^-20 each); the
  // authors' log(p + 1e-5) shifts both by about (n - 1) 1e-5.
  const auto one_hot = [](std::int64_t n, std::int64_t column) {
    auto t = at::zeros({n, 3}, at::kDouble);
    t.select(1, column).fill_(1.0);
    return t;
  };
  EXPECT_NEAR(metrics::soft_neighborhood_density(one_hot(10, 0)), -std::log(1.0 / 9 + 1e-5), 1e-7);
  EXPECT_NEAR(metrics::soft_neighborhood_density(at::cat({one_hot(5, 0), one_hot(5, 2)})), -std::log(1.0 / 4 + 1e-5), 1e-7);
}

// The message of what `call` throws as E ("" when it throws nothing).
template <class E, class F>
std::string thrown_message(F call) {
  try {
    call();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

TEST(LabelFreeSignals, RefusesBadSizesLogitsOfAnotherShapeAndTilesOutOfRange) {
  const std::string bad_size = "LabelFreeSignals: needs 2+ classes, 1+ tiles and 1+ pixels a tile";
  EXPECT_EQ(thrown_message<std::invalid_argument>([] { metrics::LabelFreeSignals(1, 4, 16); }), bad_size);
  EXPECT_EQ(thrown_message<std::invalid_argument>([] { metrics::LabelFreeSignals(3, 0, 16); }), bad_size);
  metrics::LabelFreeSignals signals(3, 4, 16);
  const std::string bad_shape = "LabelFreeSignals::add: logits must be [tiles, classes, H, W] of the declared size";
  EXPECT_EQ(thrown_message<std::invalid_argument>([&] { signals.add(at::zeros({1, 2, 4, 4}), {0}); }), bad_shape);
  EXPECT_EQ(thrown_message<std::invalid_argument>([&] { signals.add(at::zeros({1, 3, 4, 4}), {0, 1}); }), bad_shape);
  EXPECT_EQ(thrown_message<std::invalid_argument>([&] { signals.add(at::zeros({1, 3, 2, 2}), {0}); }), bad_shape);
  EXPECT_EQ(thrown_message<std::out_of_range>([&] { signals.add(at::zeros({1, 3, 4, 4}), {4}); }),
            "LabelFreeSignals::add: tile index out of range");
  EXPECT_TRUE(signals.scores(at::Tensor()).empty());  // nothing added
}

TEST(LoaderSetup, TrainingAndValidationOptionsFromConfig) {
  const auto c = config::parse_config(R"(
data:
  batch_size: 6
  val_batch_size: 16
  workers: 3
  prefetch: 4
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
