// AdaBN, BatchNorm statistics re-estimated (batch_norm_statistics.h): they
// are those of the whole set as one training-mode batch, for plain, DSBN
// (target branch only) and synchronised BatchNorm, whatever the batching and
// on two ranks (threads); no tiles anywhere is an error.
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include "models/batch_norm_statistics.h"
#include "models/model_fixture.h"
#include "models/segmentation_model.h"
#include "models/sync_batch_norm.h"
#include "ranks/rank_sum.h"
#include "support/thread_rank.h"
#include "support/two_moons.h"
#include "support/two_thread_sum.h"

namespace da::models {
namespace {

using ::da::test::copy_by_name;
using ::da::test::is_target_key;
using ::da::test::kTinyDsbn;
using ::da::test::kTinyPlain;
using ::da::test::randomise_bns;
using test::ThreadRank;
using test::TwoThreadSum;

using Visit = std::function<void(const at::Tensor&)>;

// Visits `images` cut into batches of the given sizes.
std::function<void(const Visit&)> batches_of(const at::Tensor& images, std::vector<int64_t> sizes) {
  return [images, sizes](const Visit& visit) {
    int64_t at = 0;
    for (const int64_t size : sizes) {
      visit(images.narrow(0, at, size));
      at += size;
    }
  };
}

// Running statistics ("...running_mean" / "...running_var") of `model`, cloned.
std::map<std::string, at::Tensor> running_stats(torch::nn::Module& model) {
  std::map<std::string, at::Tensor> stats;
  for (const auto& item : model.named_buffers()) {
    if (item.key().find("running_") != std::string::npos) stats[item.key()] = item.value().clone();
  }
  return stats;
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(b.norm().item<double>(), 1e-12);
}

// The independent reference: a copy of `model` with momentum 1 in every
// batch norm, one train-mode forward of the whole set as a single batch.
std::map<std::string, at::Tensor> one_batch_reference(SegmentationModelImpl& model, const ModelSpec& spec,
                                                      const at::Tensor& images, Domain domain) {
  SegmentationModel copy = make_segmentation_model(spec);
  copy_by_name(model, *copy);
  for (const auto& m : copy->modules(/*include_self=*/false)) {
    if (auto* b = m->as<torch::nn::BatchNorm2d>()) b->options.momentum(1.0);
    if (auto* d = m->as<DomainBatchNorm2d>()) d->options.momentum(1.0);
    if (auto* s = m->as<SyncBatchNorm2d>()) s->options.momentum(1.0);
  }
  torch::NoGradGuard no_grad;
  copy->train();
  copy->set_domain(domain);
  copy->forward(images);
  return running_stats(*copy);
}

TEST(AdaBn, StatisticsAreThoseOfTheWholeSetAsOneTrainModeBatch) {
  ModelSpec synced = kTinyPlain;
  synced.batch_stats_sync = ranks::single_rank();
  for (const ModelSpec& spec : {kTinyPlain, kTinyDsbn, synced}) {
    SCOPED_TRACE(std::string(spec.domain_specific_bn ? "dsbn" : spec.batch_stats_sync ? "sync" : "plain"));
    at::manual_seed(11);
    SegmentationModel model = make_segmentation_model(spec);
    randomise_bns(*model);
    model->train();
    const at::Tensor images = at::randn({10, 3, 32, 32}) * 2 + 0.5;
    const auto before = running_stats(*model);
    const auto expected = one_batch_reference(*model, spec, images, Domain::kTarget);

    const BatchNormReestimate done = reestimate_batch_norm(*model, Domain::kTarget, batches_of(images, {4, 4, 2}),
                                                           at::zeros({1, 3, 32, 32}), spec.batch_stats_sync.get());
    EXPECT_EQ(done.tiles, 10);
    std::size_t bn_layers = 0;  // a DSBN layer counts once (its target child is a BatchNorm2d)
    for (const auto& m : model->modules(/*include_self=*/false)) {
      bn_layers += m->as<DomainBatchNorm2d>() || m->as<SyncBatchNorm2d>() ||
                   (!spec.domain_specific_bn && m->as<torch::nn::BatchNorm2d>());
    }
    EXPECT_EQ(done.layers, static_cast<int64_t>(bn_layers));
    EXPECT_TRUE(model->is_training());
    EXPECT_EQ(model->domain(), Domain::kSource);

    std::size_t compared = 0;
    for (const auto& [name, value] : running_stats(*model)) {
      if (spec.domain_specific_bn && !is_target_key(name)) {
        EXPECT_TRUE(at::equal(value, before.at(name))) << name << ": the source branch must stay";
        continue;
      }
      ++compared;
      EXPECT_LE(relative_difference(value, expected.at(name)), 1e-4) << name;
      EXPECT_GT(relative_difference(value, before.at(name)), 1e-2) << name << " did not change";
    }
    EXPECT_EQ(compared, 2 * bn_layers);
  }
}

TEST(AdaBn, AnyBatchingAndTwoRanksGiveTheOneProcessStatistics) {
  at::manual_seed(12);
  SegmentationModel start = make_segmentation_model(kTinyDsbn);
  randomise_bns(*start);
  const at::Tensor images = at::randn({10, 3, 32, 32}) * 1.5 - 0.3;
  const at::Tensor probe = at::zeros({1, 3, 32, 32});
  auto copy_of_start = [&] {
    SegmentationModel m = make_segmentation_model(kTinyDsbn);
    copy_by_name(*start, *m);
    return m;
  };
  SegmentationModel one = copy_of_start();
  reestimate_batch_norm(*one, Domain::kTarget, batches_of(images, {10}), probe, nullptr);
  const auto expected = running_stats(*one);

  SegmentationModel rebatched = copy_of_start();
  reestimate_batch_norm(*rebatched, Domain::kTarget, batches_of(images, {3, 3, 3, 1}), probe, nullptr);
  for (const auto& [name, value] : running_stats(*rebatched)) {
    EXPECT_LE(relative_difference(value, expected.at(name)), 1e-5) << name;
  }

  // Ranks with interleaved shards, and a rank without tiles.
  const at::Tensor even = images.index_select(0, at::tensor({0, 2, 4, 6, 8}, at::kLong));
  const at::Tensor odd = images.index_select(0, at::tensor({1, 3, 5, 7, 9}, at::kLong));
  const std::vector<std::pair<std::function<void(const Visit&)>, std::function<void(const Visit&)>>> splits{
      {batches_of(even, {3, 2}), batches_of(odd, {5})}, {batches_of(images, {4, 4, 2}), batches_of(images, {})}};
  for (const auto& split : splits) {
    TwoThreadSum sum;
    SegmentationModel rank0 = copy_of_start();
    SegmentationModel rank1 = copy_of_start();
    BatchNormReestimate done0, done1;
    std::thread other([&] {
      ThreadRank sync(sum, 1);
      done1 = reestimate_batch_norm(*rank1, Domain::kTarget, split.second, probe, &sync);
    });
    ThreadRank sync(sum, 0);
    done0 = reestimate_batch_norm(*rank0, Domain::kTarget, split.first, probe, &sync);
    other.join();
    EXPECT_EQ(done0.tiles, 10);
    EXPECT_EQ(done1.tiles, 10);
    const auto got1 = running_stats(*rank1);
    for (const auto& [name, value] : running_stats(*rank0)) {
      EXPECT_LE(relative_difference(value, expected.at(name)), 1e-5) << name;
      EXPECT_TRUE(at::equal(value, got1.at(name))) << name << ": the ranks disagree";
    }
  }
}

TEST(AdaBn, NoTilesAnywhereIsAnError) {
  SegmentationModel model = make_segmentation_model(kTinyPlain);
  EXPECT_THROW(reestimate_batch_norm(*model, Domain::kTarget, [](const Visit&) {}, at::zeros({1, 3, 32, 32}), nullptr),
               std::runtime_error);
}

// AdaBN on a problem where it is known to help: the target is the source
// seen by a sensor with another gain and offset (every band x -> 1.5 x - 2.5),
// which the first BatchNorm's statistics absorb once they are the target's.
// Moons tiles with classes in 8x8 squares; the tiny U-Net trains on the source
// (plain BatchNorm), then the target is evaluated with the source's running
// statistics (source only) and after their re-estimation on the target
// training tiles, as the trainer does for `adabn` before each validation.
TEST(AdaBn, RecoversAGainAndOffsetShift) {
  at::set_num_threads(1);  // the same reduction order, so the same result, on every machine
  const auto lit = [](test::LabelledPoints p) {
    p.x = 1.5 * p.x - 2.5;
    return p;
  };
  const test::LabelledPoints source = test::two_moon_tiles(0, 1, 8, 32, 8);
  const test::LabelledPoints target_train = lit(test::two_moon_tiles(0, 2, 8, 32, 8));
  const test::LabelledPoints target_test = lit(test::two_moon_tiles(0, 3, 8, 32, 8));
  const ModelSpec spec{"tiny", 2, 2};
  const auto accuracy = [](SegmentationModelImpl& model, const test::LabelledPoints& points) {
    torch::NoGradGuard no_grad;
    return model.forward(points.x).logits.argmax(1).eq(points.y).to(at::kDouble).mean().item<double>();
  };
  double before = 0, after = 0, on_source = 0;
  for (int seed = 0; seed < 3; ++seed) {
    at::manual_seed(seed);
    SegmentationModel model = make_segmentation_model(spec);
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-2));
    model->train();
    for (int step = 0; step < 200; ++step) {
      optimizer.zero_grad();
      torch::nn::functional::cross_entropy(model->forward(source.x).logits, source.y).backward();
      optimizer.step();
    }
    model->eval();
    on_source += accuracy(*model, source) / 3;
    before += accuracy(*model, target_test) / 3;
    reestimate_batch_norm(*model, Domain::kTarget, batches_of(target_train.x, {4, 4}), at::zeros({1, 2, 32, 32}),
                          nullptr);
    after += accuracy(*model, target_test) / 3;
  }
  EXPECT_GT(on_source, 0.9);
  EXPECT_LT(before, 0.75);
  EXPECT_GT(after, before + 0.08);
  std::cout << "source " << on_source << ", target with source statistics " << before << ", with AdaBN's " << after
            << "\n";
}

}  // namespace
}  // namespace da::models
