#include "inference/evaluate.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "io/archive_set.h"
#include "io/tile_loader.h"
#include "log/json_text.h"

namespace da::inference {
namespace {

std::string number(double value, int digits = 4) {
  if (!std::isfinite(value)) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

}  // namespace

Evaluation evaluate(CheckpointModel& model, const EvaluateOptions& options) {
  const std::string input_name = archive_list(options.inputs);
  Evaluation result;
  std::int64_t ignore_index = 255;
  {
    const io::ArchiveSet input(options.inputs);
    check_archive(model, input, input_name, true);
    result.class_names = input.info().classes;
    ignore_index = input.info().ignore_index;
  }
  if (ignore_index != model.config.loss.ignore_index) {
    spdlog::warn("{}: ignore_index is {} (the checkpoint's loss.ignore_index is {}); the archive's value is used",
                 input_name, ignore_index, model.config.loss.ignore_index);
  }
  result.checkpoint = model.path;
  result.inputs = options.inputs;
  result.domain = options.domain;
  metrics::ConfusionMatrix matrix(model.spec.classes);
  io::TileLoader loader(inference_loader_options(model.config, options.batch_size, true), options.inputs);
  spdlog::info("evaluating {} on {} tiles of {} (domain {}, device {})", model.path, loader.num_tiles(), input_name,
               models::domain_name(options.domain), model.device.str());
  result.tiles = for_each_prediction(
      model, options.domain, loader,
      [&](const io::Batch& batch, const std::vector<std::int64_t>& rows, const at::Tensor& logits) {
        matrix.add_logits(logits, batch.mask.index_select(0, at::tensor(rows, at::kLong)), ignore_index);
      });
  result.counts = matrix.counts().clone();
  result.scores = metrics::compute_scores(result.counts);
  return result;
}

Evaluation evaluate(const EvaluateOptions& options) {
  CheckpointModel model = load_checkpoint_model(options.checkpoint);
  return evaluate(model, options);
}

std::string scores_table(const Evaluation& e) {
  std::size_t width = 5;
  for (const auto& name : e.class_names) width = std::max(width, name.size());
  std::ostringstream out;
  char line[256];
  out << "checkpoint " << e.checkpoint << " on " << archive_list(e.inputs) << " (" << e.tiles << " tiles, "
      << e.scores.pixels << " labelled pixels, domain " << models::domain_name(e.domain) << ")\n";
  std::snprintf(line, sizeof(line), "%-*s  %8s  %8s\n", static_cast<int>(width), "class", "IoU", "F1");
  out << line;
  for (std::size_t k = 0; k < e.class_names.size(); ++k) {
    std::snprintf(line, sizeof(line), "%-*s  %8s  %8s\n", static_cast<int>(width), e.class_names[k].c_str(),
                  number(e.scores.iou.at(k)).c_str(), number(e.scores.f1.at(k)).c_str());
    out << line;
  }
  std::snprintf(line, sizeof(line), "%-*s  %8s  %8s\n", static_cast<int>(width), "mean", number(e.scores.miou).c_str(),
                number(e.scores.mean_f1).c_str());
  out << line;
  out << "mIoU " << number(e.scores.miou) << "  mean F1 " << number(e.scores.mean_f1) << "  overall accuracy "
      << number(e.scores.overall_accuracy) << "\n";
  return out.str();
}

std::string scores_json(const Evaluation& e) {
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (std::size_t k = 0; k < e.class_names.size(); ++k) {
    classes.push_back({{"name", e.class_names[k]}, {"iou", e.scores.iou.at(k)}, {"f1", e.scores.f1.at(k)}});
  }
  const at::Tensor counts = e.counts.to(at::kLong).contiguous();
  nlohmann::ordered_json matrix = nlohmann::ordered_json::array();
  for (std::int64_t i = 0; i < counts.size(0); ++i) {
    const at::Tensor row = counts[i];
    matrix.push_back(std::vector<std::int64_t>(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel()));
  }
  return log::json_document({{"checkpoint", e.checkpoint},
                             {"inputs", e.inputs},
                             {"domain", models::domain_name(e.domain)},
                             {"tiles", e.tiles},
                             {"pixels", e.scores.pixels},
                             {"miou", e.scores.miou},
                             {"mean_f1", e.scores.mean_f1},
                             {"overall_accuracy", e.scores.overall_accuracy},
                             {"classes", classes},
                             {"confusion_matrix", matrix}});
}

}  // namespace da::inference
