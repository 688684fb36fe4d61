// The run's metrics on rank 0: one JSON object per line in
// <run_dir>/metrics.jsonl ({"kind": "step"|"epoch", "epoch": e, "step": s,
// "<name>": value, ...}; NaN as null) and, when enabled, the same scalars in
// TensorBoard event files under <run_dir>/tensorboard/.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>

namespace da::log {

class TensorBoardWriter;

class MetricsLog {
 public:
  MetricsLog(const std::string& run_dir, bool tensorboard);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const std::string& kind, std::int64_t epoch, std::int64_t step,
             const std::map<std::string, double>& values);

 private:
  std::ofstream jsonl_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

// The JSON line for `values` (keys escaped, NaN/Inf as null).
std::string metrics_json(const std::string& kind, std::int64_t epoch, std::int64_t step,
                         const std::map<std::string, double>& values);

}  // namespace da::log
