// da_dist under mpirun on the CPU (MPI backend): two ranks with batch b train
// the same model as one rank with batch 2b, agree on step, epoch and lambda
// at every step, and a failure on one rank ends the whole job quickly.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>

#include "setup/checkpoint.h"
#include "support/process.h"
#include "trainer/data_parallel_check.h"
#include "trainer/training_fixture.h"

namespace da {
namespace {

namespace fs = std::filesystem;
using test::config_file;
using test::expect_two_ranks_equal_one_rank;
using test::last_epoch_metric;
using test::run_da_dist;

TEST(DataParallel, TwoRanksEqualOneRankWithTwiceTheBatch) {
  const std::string dir = test::make_temp_dir("da_dp");
  EXPECT_GT(expect_two_ranks_equal_one_rank(dir, "{name: dann, hidden_size: 8}"), 0u);  // the discriminator's
  fs::remove_all(dir);
}

// mcc, bsp, mmd and coral compute their batch statistics across the ranks
// (mcc sampling the same pixels of the same tiles): two ranks train the model
// of one rank with the union batch. A gentle learning rate: at 0.05 BSP's
// growing features amplify float rounding into visible differences.
TEST(DataParallel, BatchStatisticsMethodsOnTwoRanksEqualOneRankWithTwiceTheBatch) {
  const std::string dir = test::make_temp_dir("da_dp_stats");
  test::RankComparison gentle;
  gentle.lr = "0.01";
  expect_two_ranks_equal_one_rank(dir,
                                  "[{name: mcc, pixels_per_image: 64, loss_weight: 0.5}, "
                                  "{name: bsp, loss_weight: 0.001}, {name: mmd}, {name: coral, loss_weight: 10}]",
                                  gentle);
  fs::remove_all(dir);
}

// Gradients all-reduced in bf16 (dist.gradient_compression) train close to
// the model of exact float32 ones after 2 epochs, and not exactly it. The
// weights differ by under 1 % (relative); BatchNorm biases start at zero and
// stay small, so theirs is the largest (up to 6 % measured).
TEST(DataParallel, Bf16CompressedGradientsStayCloseToOneRank) {
  const std::string dir = test::make_temp_dir("da_dp_bf16");
  test::RankComparison compressed;
  compressed.two_rank_sets = {"dist.gradient_compression=bf16"};
  compressed.tolerance = 0.1;
  compressed.iou_tolerance = 0.02;
  compressed.expect_some_difference = true;
  expect_two_ranks_equal_one_rank(dir, "{name: dann, hidden_size: 8}", compressed);
  fs::remove_all(dir);
}

TEST(DataParallel, SyncBatchNormTwoRanksEqualOneRankWithTwiceTheBatch) {
  // BatchNorm in training mode: with dist.sync_bn the two ranks' batch
  // statistics are those of the global batch. 128x128 tiles: with 32x32 ones
  // the deepest layers normalise 1x1 maps of a few tiles.
  const std::string dir = test::make_temp_dir("da_dp_sync");
  const auto synth = test::run_process(test::binary_path("tools/da_tiles/da_tiles"),
                                       {"synth", "--out", dir + "/data", "--tiles", "16", "--val-tiles", "4", "--size", "128"});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  const std::string config = config_file(dir + "/cfg", "{name: dann, hidden_size: 8}");
  const std::string data = dir + "/data/";
  auto run = [&](const std::string& name, int ranks, const std::vector<std::string>& extra) {
    std::vector<std::string> sets{"run.max_epochs=1", "optimizer.name=sgd", "model.bn_mode=separate",
                                  "data.source.train=[" + data + "source_train.h5]",
                                  "data.source.val=[" + data + "source_val.h5]",
                                  "data.target.train=[" + data + "target_train.h5]",
                                  "data.target.val=[" + data + "target_val.h5]",
                                  "data.batch_size=" + std::to_string(4 / ranks), "run.output_dir=" + dir + "/" + name};
    sets.insert(sets.end(), extra.begin(), extra.end());
    const auto r = run_da_dist(ranks, config, sets);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return setup::read_checkpoint_model(dir + "/" + name + "/run/checkpoints/last.pt");
  };
  // Forward: with a negligible learning rate the running statistics record
  // the batch statistics of each of the 8 forwards (4 steps x 2 domains).
  {
    const auto one = run("fwd1", 1, {"optimizer.lr=1e-12"});
    const auto two = run("fwd2", 2, {"optimizer.lr=1e-12", "dist.sync_bn=true"});
    const auto unsynced = run("fwd2u", 2, {"optimizer.lr=1e-12"});
    double unsynced_worst = 0;
    for (const auto& [name, tensor] : one) {
      if (name.find("running_") == std::string::npos) continue;
      const double scale = std::max(tensor.norm().item<double>(), 1e-12);
      EXPECT_LE((tensor - two.at(name)).norm().item<double>() / scale, 1e-5) << name;
      unsynced_worst = std::max(unsynced_worst, (tensor - unsynced.at(name)).norm().item<double>() / scale);
    }
    EXPECT_GT(unsynced_worst, 1e-3);  // without sync_bn the per-rank statistics really differ
  }
  // Training: the whole model after 4 SGD steps. The BatchNorm backward's
  // cancellations leave rounding differences of up to ~1e-3 in small
  // gradients (per tensor), so the comparison is over all parameters
  // together, against the same run without sync_bn as the scale of a real
  // difference.
  {
    const auto one = run("train1", 1, {"optimizer.lr=0.05"});
    const auto two = run("train2", 2, {"optimizer.lr=0.05", "dist.sync_bn=true"});
    const auto unsynced = run("train2u", 2, {"optimizer.lr=0.05"});
    auto relative = [&](const models::StateDict& other) {
      double diff = 0, norm = 0;
      for (const auto& [name, tensor] : one) {
        if (!tensor.is_floating_point()) continue;
        diff += (tensor - other.at(name)).pow(2).sum().item<double>();
        norm += tensor.pow(2).sum().item<double>();
      }
      return std::sqrt(diff / norm);
    };
    const double synced_diff = relative(two);
    const double unsynced_diff = relative(unsynced);
    EXPECT_LE(synced_diff, 5e-4);
    EXPECT_GT(unsynced_diff, 20 * synced_diff) << "synced " << synced_diff << ", unsynced " << unsynced_diff;
  }
  fs::remove_all(dir);
}

// AdaBN's target statistics are summed over the ranks: 1, 2 and 3 ranks
// (16 target tiles: with 3 the last round wraps, and the padding must not
// count twice) give the same re-estimated model. A negligible learning rate
// and frozen BatchNorm keep the trained weights equal whatever the global
// batch, so the comparison isolates the re-estimation.
TEST(DataParallel, AdaBnStatisticsDoNotDependOnTheRankCount) {
  const std::string dir = test::make_temp_dir("da_dp_adabn");
  const std::string config = config_file(dir + "/cfg", "[{name: dann, hidden_size: 8}, {name: adabn}]");
  std::map<int, models::StateDict> models;
  for (const int ranks : {1, 2, 3}) {
    const std::string out = dir + "/np" + std::to_string(ranks);
    const auto r = run_da_dist(ranks, config,
                               {"run.max_epochs=1", "model.freeze_bn=true", "optimizer.name=sgd", "optimizer.lr=1e-12",
                                "data.batch_size=" + std::to_string(ranks == 1 ? 4 : ranks == 2 ? 2 : 1),
                                "data.val_batch_size=3", "run.output_dir=" + out});
    ASSERT_EQ(r.exit_code, 0) << ranks << " ranks\n" << r.err;
    EXPECT_EQ(last_epoch_metric(out + "/run", "adabn/tiles"), 16) << ranks << " ranks";
    models[ranks] = setup::read_checkpoint_model(out + "/run/checkpoints/last.pt");
  }
  // Re-estimated: no longer BatchNorm's initial mean 0, variance 1.
  EXPECT_GT((models[1].at("encoder.bn1.running_var") - 1).abs().max().item<double>(), 1e-2);
  std::size_t running = 0;
  for (const int ranks : {2, 3}) {
    for (const auto& [name, tensor] : models[1]) {
      ASSERT_TRUE(models[ranks].count(name)) << name;
      if (!tensor.is_floating_point()) continue;
      const double diff = (tensor - models[ranks].at(name)).norm().item<double>();
      if (name.find("running_") == std::string::npos) {
        // Weights: equal up to the negligible steps (3 ranks pad the source epoch, so their steps differ).
        EXPECT_LE(diff, 1e-9) << ranks << " ranks: " << name;
        continue;
      }
      ++running;
      EXPECT_LE(diff / std::max(tensor.norm().item<double>(), 1e-12), 1e-5) << ranks << " ranks: " << name;
    }
  }
  EXPECT_GT(running, 0u);
  for (const char* key : {"iou/target_val", "iou/source_val"}) {
    EXPECT_NEAR(last_epoch_metric(dir + "/np1/run", key), last_epoch_metric(dir + "/np2/run", key), 1e-6) << key;
    EXPECT_NEAR(last_epoch_metric(dir + "/np1/run", key), last_epoch_metric(dir + "/np3/run", key), 1e-6) << key;
  }
  fs::remove_all(dir);
}

// Every built-in method runs unchanged on two ranks (gradients of its nets
// all-reduced, the replicas' agreement checked at every step).
TEST(DataParallel, EveryMethodTrainsOnTwoRanks) {
  const std::string dir = test::make_temp_dir("da_dp_methods");
  const std::vector<std::string> methods{
      "{name: cdan, hidden_size: 8, entropy_conditioning: true}",
      "{name: dann, layers: [encoder.layer3, encoder.layer4], hidden_size: 8}",
      "{name: advent_adversarial, ndf: 4}",
      "{name: mcc}",
      "[{name: dann, hidden_size: 8}, {name: bsp, loss_weight: 0.01}]",
      "{name: mmd}",
      "{name: coral}",
      "{name: fda, beta: 0.05}",
      "{name: mstn, hidden_size: 8}",
      "{name: pseudo_label, class_balanced: true, threshold: 0.5}",
      "[{name: dann, hidden_size: 8}, {name: adabn}]"};
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const std::string config = config_file(dir + "/cfg" + std::to_string(i), methods[i]);
    const auto r = run_da_dist(2, config, {"run.max_epochs=1", "dist.check_every_n_steps=1",
                                           "run.output_dir=" + dir + "/run" + std::to_string(i)});
    EXPECT_EQ(r.exit_code, 0) << methods[i] << "\n" << r.err;
    EXPECT_GT(last_epoch_metric(dir + "/run" + std::to_string(i) + "/run", "train/loss/total"), 0.0) << methods[i];
  }
  fs::remove_all(dir);
}

// Resume on two ranks is exact: 4 epochs straight equal 2 epochs, then a
// resume from the epoch-2 checkpoint, then 2 more.
TEST(DataParallel, TwoRanksResumeExactly) {
  const std::string dir = test::make_temp_dir("da_dp_resume");
  const std::string config = config_file(dir + "/cfg", "{name: dann, hidden_size: 8}");
  const auto straight = run_da_dist(2, config, {"run.max_epochs=4", "run.output_dir=" + dir + "/a"});
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  const auto resumed = run_da_dist(2, config, {"run.max_epochs=4", "run.output_dir=" + dir + "/b"},
                                   dir + "/a/run/checkpoints/epoch-0002.pt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  for (const auto& [reader, prefix] :
       std::vector<std::pair<models::StateDict (*)(const std::string&), std::string>>{
           {setup::read_checkpoint_model, "model."}, {setup::read_checkpoint_method_tensors, "method."}}) {
    const auto a = reader(dir + "/a/run/checkpoints/last.pt");
    const auto b = reader(dir + "/b/run/checkpoints/last.pt");
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, tensor] : a) {
      EXPECT_TRUE(at::equal(tensor, b.at(name))) << prefix << name << " differs by "
                                                 << (tensor.to(at::kDouble) - b.at(name).to(at::kDouble)).abs().max().item<double>();
    }
  }
  fs::remove_all(dir);
}

// CBST's histograms are summed over the ranks at every step, so the state in
// rank 0's checkpoint is every rank's: a run preempted in the middle of an
// epoch resumes exactly on two ranks.
TEST(DataParallel, TwoRanksResumeClassBalancedPseudoLabelsExactlyFromTheMiddleOfAnEpoch) {
  const std::string dir = test::make_temp_dir("da_dp_resume_cbst");
  const std::string plugins =
      "plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]";
  const std::string cbst = "{name: pseudo_label, class_balanced: true, portion: 0.5}";
  // Batch 2 per rank: 4 steps per epoch; global step 6 is the third of epoch 1.
  const std::vector<std::string> sets{plugins, "run.max_epochs=3", "data.batch_size=2"};
  auto with_output = [&](const std::string& out) {
    auto all = sets;
    all.push_back("run.output_dir=" + dir + "/" + out);
    return all;
  };
  const auto straight =
      run_da_dist(2, config_file(dir + "/a", "[" + cbst + ", {name: test_preempt_at}]"), with_output("a"));
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  EXPECT_NE(last_epoch_metric(dir + "/a/run", "train/da/pseudo_label/pseudo_label_threshold_mean"), 0.9);
  const std::string preempted = config_file(dir + "/b", "[" + cbst + ", {name: test_preempt_at, step: 6}]");
  const auto stopped = run_da_dist(2, preempted, with_output("b"));
  ASSERT_NE(stopped.exit_code, 0) << stopped.err;
  const std::string last = dir + "/b/run/checkpoints/last.pt";
  ASSERT_TRUE(fs::exists(last)) << stopped.err;
  const auto resumed = run_da_dist(2, preempted, with_output("b"), last);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  // The thresholds of the last epoch come from the interrupted one's histograms.
  const std::string threshold_mean = "train/da/pseudo_label/pseudo_label_threshold_mean";
  EXPECT_EQ(last_epoch_metric(dir + "/a/run", threshold_mean), last_epoch_metric(dir + "/b/run", threshold_mean));
  const auto a = setup::read_checkpoint_model(dir + "/a/run/checkpoints/last.pt");
  const auto b = setup::read_checkpoint_model(dir + "/b/run/checkpoints/last.pt");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(at::equal(tensor, b.at(name))) << name;
  }
  fs::remove_all(dir);
}

// Elastic resume (setup/elastic_resume.h): a run preempted in the middle of
// an epoch (global step 6, the third of epoch 1) on N ranks resumes on M with
// the checkpoint's global batch of 4 and ends with the model of the
// uninterrupted N-rank run, up to the order of floating-point sums over the
// ranks (BatchNorm frozen and SGD, as in the rank-count equality tests).
TEST(DataParallel, ElasticResumeOnOtherRankCountsKeepsTheGlobalBatch) {
  const std::string dir = test::make_temp_dir("da_elastic");
  const std::string plugins =
      "plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]";
  const std::string dann = "{name: dann, hidden_size: 8}";
  for (const auto& [from, to] : std::vector<std::pair<int, int>>{{4, 2}, {2, 4}, {2, 1}}) {
    const std::string run = dir + "/" + std::to_string(from) + "to" + std::to_string(to);
    const std::vector<std::string> sets{plugins, "run.max_epochs=2", "model.freeze_bn=true", "optimizer.name=sgd",
                                        "optimizer.lr=0.05", "data.batch_size=" + std::to_string(4 / from)};
    auto with_output = [&](const std::string& out) {
      auto all = sets;
      all.push_back("run.output_dir=" + run + "/" + out);
      return all;
    };
    const auto straight =
        run_da_dist(from, config_file(run + "/a", "[" + dann + ", {name: test_preempt_at}]"), with_output("a"));
    ASSERT_EQ(straight.exit_code, 0) << straight.err;
    const std::string preempted = config_file(run + "/b", "[" + dann + ", {name: test_preempt_at, step: 6}]");
    const auto stopped = run_da_dist(from, preempted, with_output("b"));
    ASSERT_NE(stopped.exit_code, 0) << stopped.err;
    const std::string last = run + "/b/run/checkpoints/last.pt";
    const auto resumed = run_da_dist(to, preempted, with_output("b"), last);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    const std::string note = last + " was written by " + std::to_string(from) + " ranks x batch " +
                             std::to_string(4 / from) + " (global batch 4); resuming on " + std::to_string(to) +
                             " ranks with batch " + std::to_string(4 / to) + " per rank (not data.batch_size " +
                             std::to_string(4 / from) + ")";
    EXPECT_NE((resumed.out + resumed.err).find(note), std::string::npos) << resumed.out << resumed.err;
    const auto differences = test::compare_checkpoints(run + "/a/run/checkpoints/last.pt", last);
    EXPECT_GT(differences.relative.size(), 0u);
    for (const auto& [name, difference] : differences.relative) {
      EXPECT_LE(difference, 1e-5) << from << " -> " << to << " ranks: " << name;
    }
  }
  // A global batch the new rank count cannot share is refused, naming the counts that can.
  const std::string run = dir + "/refused";
  const std::string preempted = config_file(run, "[" + dann + ", {name: test_preempt_at, step: 6}]");
  const std::vector<std::string> sets{plugins, "data.batch_size=2", "run.output_dir=" + run};
  ASSERT_NE(run_da_dist(2, preempted, sets).exit_code, 0);
  const auto refused = run_da_dist(3, preempted, sets, run + "/run/checkpoints/last.pt");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("cannot resume on 3 ranks: " + run + "/run/checkpoints/last.pt was written by 2 ranks x "
                             "batch 2 (global batch 4), which they cannot share evenly; resume on 1, 2, 4 ranks"),
            std::string::npos)
      << refused.err;
  fs::remove_all(dir);
}

TEST(TrainCommand, BadInputsExitWithTheirMessage) {
  const std::string dir = test::make_temp_dir("da_bad_input");
  const std::string config = config_file(dir + "/cfg", "{name: source_only}");
  const std::string out = "run.output_dir=" + dir + "/out";
  // The config disagrees with the archives: a configuration error, status 2.
  auto r = run_da_dist(1, config, {out, "model.in_channels=4"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("config error: model.in_channels: 4 but the archives have 3 bands (red, green, blue); "
                       "use 0 to take it from the archives"),
            std::string::npos)
      << r.err;
  r = run_da_dist(1, config, {out, "model.classes=7"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("model.classes: 7 but the source archives have 4 classes"), std::string::npos) << r.err;
  // A missing checkpoint to resume from: a runtime error naming it, status 1.
  const std::string missing = dir + "/none.pt";
  std::vector<std::string> args{"--config", config, "--set", out, "--resume", missing};
  r = test::run_process(test::binary_path("src/da_dist"), args, {"OMP_NUM_THREADS=1"}, 120);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error on rank 0: checkpoint " + missing + ": no such file"), std::string::npos) << r.err;
  // cuda asked for on a machine without it.
  if (!fs::exists("/dev/nvidia0")) {
    r = run_da_dist(1, config, {out, "run.device=cuda"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("run.device is cuda but this build or machine has no CUDA device"), std::string::npos)
        << r.err;
  }
  fs::remove_all(dir);
}

TEST(DataParallel, AFailingRankEndsTheJobQuickly) {
  const std::string dir = test::make_temp_dir("da_fail");
  const std::string config = config_file(dir + "/cfg", "{name: test_fail_at, step: 3, rank: 1}");
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_da_dist(2, config,
                             {"plugins=[" + test::binary_path("tests/trainer/plugin/libda_test_methods_plugin.so") + "]",
                              "run.output_dir=" + dir + "/out"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(seconds, 30.0 * test::timeout_scale());
  EXPECT_NE(r.err.find("error on rank 1: test_fail_at: injected failure at step 3"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(DataParallel, WarmupWithoutDaGradientsDoesNotHang) {
  // During the warm-up epoch the discriminator gets no gradient on any rank:
  // the reducer must contribute zeros for it instead of waiting.
  const std::string dir = test::make_temp_dir("da_dp_warm");
  const std::string config = config_file(dir + "/cfg", "{name: dann, hidden_size: 8}");
  const auto r = run_da_dist(2, config, {"run.max_epochs=2", "domain_adaptation.warmup_epochs=1",
                                         "dist.timeout_s=20", "run.output_dir=" + dir + "/out"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(last_epoch_metric(dir + "/out/run", "train/da/dann/domain_loss"), 0.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace da
