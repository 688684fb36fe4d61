#include "log/metrics_log.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "log/json_text.h"
#include "log/tensorboard_writer.h"

namespace da::log {

namespace {

// Nine significant digits, a float's worth: the logged values are float
// computations, and more digits would only show their rounding.
double nine_digits(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return std::strtod(text, nullptr);
}

}  // namespace

std::string metrics_json(const std::string& kind, std::int64_t epoch, std::int64_t step,
                         const std::map<std::string, double>& values) {
  nlohmann::ordered_json line{{"kind", kind}, {"epoch", epoch}, {"step", step}};
  for (const auto& [key, value] : values) line[key] = nine_digits(value);
  return json_line(line);
}

MetricsLog::MetricsLog(const std::string& run_dir, bool tensorboard)
    : jsonl_(run_dir + "/metrics.jsonl", std::ios::app) {
  if (!jsonl_) throw std::runtime_error("cannot open " + run_dir + "/metrics.jsonl for writing");
  if (tensorboard) tensorboard_ = std::make_unique<TensorBoardWriter>(run_dir + "/tensorboard");
}

MetricsLog::~MetricsLog() = default;

void MetricsLog::write(const std::string& kind, std::int64_t epoch, std::int64_t step,
                       const std::map<std::string, double>& values) {
  jsonl_ << metrics_json(kind, epoch, step, values) << '\n';
  jsonl_.flush();
  if (tensorboard_) {
    const std::string prefix = kind == "step" ? "train/" : "";
    for (const auto& [key, value] : values) tensorboard_->add_scalar(prefix + key, value, step);
    tensorboard_->flush();
  }
}

}  // namespace da::log
