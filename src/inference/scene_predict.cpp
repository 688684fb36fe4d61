#include "inference/scene_predict.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <utility>

#include "inference/gdal_util.h"
#include "inference/scene_reader.h"
#include "inference/scene_split.h"
#include "inference/scene_writer.h"

namespace da::inference {
namespace fs = std::filesystem;
namespace {

// Finished scene rows [y, y + classes.size(0)): classes uint8 and confidence float, [n, width].
struct SceneRows {
  std::int64_t y = 0;
  at::Tensor classes, confidence;
};

// The scene rows among padded rows [y, y + n) of blended logits [K, n, padded
// width]: their argmax and softmax maximum, nodata applied; none when the
// rows are all padding.
std::optional<SceneRows> finish_rows(SceneReader& in, std::int64_t y, const at::Tensor& logits) {
  const std::int64_t margin = in.margin();
  const std::int64_t first = std::max(y, margin), last = std::min(y + logits.size(1), margin + in.height());
  if (first >= last) return std::nullopt;
  const at::Tensor scene_logits = logits.narrow(1, first - y, last - first).narrow(2, margin, in.width());
  const auto [probability, label] = at::softmax(scene_logits, 0).max(0);
  SceneRows rows{first - margin, label.to(at::kByte).contiguous(), probability.contiguous()};
  if (in.has_nodata()) {
    const at::Tensor missing = in.nodata_mask(rows.y, last - first);
    rows.classes.masked_fill_(missing, kSceneNodata);
    rows.confidence.masked_fill_(missing, -1.0);
  }
  return rows;
}

// The window grid's rows over the padded scene.
std::vector<std::int64_t> window_rows_of(const SceneReader& in, const SlidingWindowOptions& window) {
  return window_starts(in.padded_height(), window.window, window.window - window.overlap);
}

// Runs the sliding window over window rows `part` of the scene and hands the
// finished scene rows to `sink`, in order.
void predict_rows(CheckpointModel& model, const ScenePredictOptions& options, SceneReader& in, WindowRows part,
                  const std::function<void(const SceneRows&)>& sink) {
  const WindowModel run_model = with_tta(
      [&](const at::Tensor& windows) {
        torch::NoGradGuard no_grad;
        model.model->set_domain(options.domain);
        return model.model->forward(windows.to(model.device)).logits.to(at::kCPU, at::kFloat);
      },
      options.tta);
  predict_sliding_windows(
      in.padded_height(), in.padded_width(), options.window,
      [&](std::int64_t y, std::int64_t n) { return in.padded_rows(y, n); }, run_model,
      [&](std::int64_t y, const at::Tensor& logits) {
        if (const auto rows = finish_rows(in, y, logits)) sink(*rows);
      },
      part);
}

// Scene rows [first, last) that the window rows of `strip` finish (empty
// when they are all padding).
std::pair<std::int64_t, std::int64_t> scene_rows_of(const SceneReader& in, const std::vector<std::int64_t>& starts,
                                                    const Strip& strip) {
  const std::int64_t top = starts[strip.begin] - in.margin();
  const std::int64_t bottom = window_row_end(starts, strip.end - 1, in.padded_height()) - in.margin();
  return {std::clamp<std::int64_t>(top, 0, in.height()), std::clamp<std::int64_t>(bottom, 0, in.height())};
}

// One scene split across the ranks of `comm` in rounds of one strip per
// rank: each rank computes its strip of the round, then the strips are
// broadcast from their ranks in order and `writer` writes them. Every rank
// opens and checks the scene first, so a scene that cannot be read fails on
// every rank before any collective (and a rank failing later ends the job,
// see cli/main.cpp). A broadcast also reaches ranks that only drop the rows;
// output rows are small next to the windows that produce them.
void predict_scene_split(CheckpointModel& model, const ScenePredictOptions& options, const std::string& scene,
                         int writer, dist::Communicator& comm) {
  const QuietGdal quiet;
  SceneReader in(scene, model, options.domain, options.window);
  std::optional<SceneWriter> out;
  if (comm.rank() == writer) out.emplace(in, options.output_dir, options.confidence);
  const std::vector<std::int64_t> starts = window_rows_of(in, options.window);
  const std::int64_t stride = options.window.window - options.window.overlap;
  const std::int64_t strip_rows =
      options.strip_rows > 0 ? options.strip_rows : std::max<std::int64_t>(1, kStripPixels / in.padded_width());
  const std::vector<Strip> strips =
      plan_strips(starts.size(), comm.size(), static_cast<std::size_t>(strip_rows / stride));
  const auto ranks = static_cast<std::size_t>(comm.size());
  for (std::size_t round = 0; round < strips.size(); round += ranks) {
    const std::size_t round_end = std::min(strips.size(), round + ranks);
    auto empty_block = [&](const Strip& strip) {
      const auto [first, last] = scene_rows_of(in, starts, strip);
      return SceneRows{first, at::empty({last - first, in.width()}, at::kByte),
                       at::empty({last - first, in.width()}, at::kFloat)};
    };
    // This rank's strip of the round (strip i is rank i % ranks's).
    const std::size_t own = round + static_cast<std::size_t>(comm.rank());
    std::optional<SceneRows> mine;
    if (own < round_end) {
      mine = empty_block(strips[own]);
      if (mine->classes.size(0) > 0) {
        predict_rows(model, options, in, {strips[own].begin, strips[own].end}, [&](const SceneRows& rows) {
          mine->classes.narrow(0, rows.y - mine->y, rows.classes.size(0)).copy_(rows.classes);
          mine->confidence.narrow(0, rows.y - mine->y, rows.confidence.size(0)).copy_(rows.confidence);
        });
      }
    }
    for (std::size_t i = round; i < round_end; ++i) {
      SceneRows block = i == own ? std::move(*mine) : empty_block(strips[i]);
      if (block.classes.size(0) == 0) continue;
      comm.broadcast(block.classes, strips[i].rank);
      if (options.confidence) comm.broadcast(block.confidence, strips[i].rank);
      if (out) out->write(block.y, block.classes, block.confidence);
    }
  }
  if (out) {
    out->publish();
    spdlog::info("{}: {}x{} pixels in {} strips over {} ranks -> {}", scene, in.width(), in.height(), strips.size(),
                 comm.size(), out->classes_path());
  }
}

}  // namespace

void predict_scene(CheckpointModel& model, const ScenePredictOptions& options, const std::string& scene) {
  const QuietGdal quiet;
  SceneReader in(scene, model, options.domain, options.window);
  SceneWriter out(in, options.output_dir, options.confidence);
  predict_rows(model, options, in, {},
               [&](const SceneRows& rows) { out.write(rows.y, rows.classes, rows.confidence); });
  out.publish();
  spdlog::info("{}: {}x{} pixels -> {}{}", scene, in.width(), in.height(), out.classes_path(),
               in.georeferenced() ? "" : " (no geotransform)");
}

std::int64_t predict_scenes(const ScenePredictOptions& options, dist::Communicator& comm) {
  std::int64_t written = 0;
  std::optional<CheckpointModel> model;
  for (const SceneShare& share : share_scenes(options.scenes.size(), comm.size())) {
    const bool writes = share.writer == comm.rank();
    if (!share.split && !writes) continue;
    if (!model) model.emplace(load_checkpoint_model(options.checkpoint));
    if (writes) fs::create_directories(options.output_dir);
    const std::string& scene = options.scenes[share.scene];
    if (share.split) {
      predict_scene_split(*model, options, scene, share.writer, comm);
    } else {
      predict_scene(*model, options, scene);
    }
    if (writes) ++written;
  }
  return written;
}

}  // namespace da::inference
