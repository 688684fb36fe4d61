#include "callbacks/model_checkpoint.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <utility>

namespace da::callbacks {
namespace fs = std::filesystem;

bool improves(double value, double best, const std::string& mode, double min_delta) {
  if (std::isnan(value)) return false;
  if (std::isnan(best)) return true;
  return mode == "max" ? value > best + min_delta : value < best - min_delta;
}

ModelCheckpoint::ModelCheckpoint(const config::CheckpointOptions& options, std::string directory)
    : options_(options), directory_(std::move(directory)), best_(std::numeric_limits<double>::quiet_NaN()) {}

void ModelCheckpoint::on_epoch_end(const EpochContext& context, const Metrics& metrics) {
  if (options_.save_last) context.save_checkpoint(directory_ + "/last.pt");
  if (options_.every_n_epochs > 0 && (context.epoch + 1) % options_.every_n_epochs == 0) {
    char file[32];
    std::snprintf(file, sizeof file, "epoch-%04lld.pt", static_cast<long long>(context.epoch + 1));
    const std::string path = directory_ + "/" + file;
    context.save_checkpoint(path);
    periodic_.push_back(path);
    while (static_cast<std::int64_t>(periodic_.size()) > options_.keep) {
      if (context.is_rank0) fs::remove(periodic_.front());
      periodic_.pop_front();
    }
  }
  if (!context.validated) return;
  const auto it = metrics.find(options_.monitor);
  if (it == metrics.end()) {
    if (!warned_missing_) {
      std::string names;
      for (const auto& [key, value] : metrics) names += (names.empty() ? "" : ", ") + key;
      spdlog::warn("callbacks.checkpoint.monitor: metric '{}' is not logged, so no best.pt is written "
                   "(logged after validation: {})",
                   options_.monitor, names);
      warned_missing_ = true;
    }
    return;
  }
  if (improves(it->second, best_, options_.mode)) {
    best_ = it->second;
    context.save_checkpoint(directory_ + "/best.pt");
    spdlog::info("new best {} = {:.4f} at epoch {}: best.pt written", options_.monitor, best_, context.epoch);
  }
}

void ModelCheckpoint::save_state(Metrics& scalars) const { scalars["checkpoint/best"] = best_; }

void ModelCheckpoint::load_state(const Metrics& scalars) {
  if (auto it = scalars.find("checkpoint/best"); it != scalars.end()) best_ = it->second;
  // The periodic files written before the resume, oldest first, so keep K still holds.
  periodic_.clear();
  std::vector<std::string> files;
  if (fs::is_directory(directory_)) {
    for (const auto& entry : fs::directory_iterator(directory_)) {
      const std::string file = entry.path().filename().string();
      if (file.rfind("epoch-", 0) == 0 && entry.path().extension() == ".pt") files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  periodic_.assign(files.begin(), files.end());
}

}  // namespace da::callbacks
