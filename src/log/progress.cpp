#include "log/progress.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace da::log {

std::string format_duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  const auto total = static_cast<std::int64_t>(std::llround(seconds));
  const std::int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02d}:{:02d}", h, m, s) : fmt::format("{}:{:02d}", m, s);
}

std::string format_progress(const ProgressState& state) {
  auto value = [&](const char* key) {
    const auto it = state.logs.find(key);
    return it == state.logs.end() ? 0.0 : it->second;
  };
  std::string line = fmt::format("epoch {}/{} step {}/{} | {:.1f} img/s | ETA {}", state.epoch + 1, state.epochs,
                                 state.step, state.steps, state.images_per_s, format_duration(state.seconds_left));
  if (state.logs.empty()) return line;  // before the epoch's first log step
  return line + fmt::format(" | loss {:.4f} (seg {:.4f}, da {:.4f}) | lambda {:.4f}", value("loss/total"),
                            value("loss/seg"), value("loss/da"), value("lambda"));
}

ProgressLine::ProgressLine(bool terminal) : terminal_(terminal) {}

bool ProgressLine::stdout_is_terminal() {
  const char* term = std::getenv("TERM");
  return isatty(STDOUT_FILENO) == 1 && !(term != nullptr && std::strcmp(term, "dumb") == 0);
}

void ProgressLine::start_epoch() {
  epoch_start_ = std::chrono::steady_clock::now();
  drawn_ = false;
}

void ProgressLine::step(ProgressState state, double images_per_step, std::int64_t steps_left_in_run,
                        bool log_step) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  if (state.step > 0 && elapsed > 0) {
    state.images_per_s = images_per_step * static_cast<double>(state.step) / elapsed;
    state.seconds_left = elapsed / static_cast<double>(state.step) * static_cast<double>(steps_left_in_run);
  }
  if (terminal_) {
    // Redraw at most ten times a second, and always on the epoch's last step.
    if (drawn_ && state.step < state.steps && now - last_draw_ < std::chrono::milliseconds(100)) return;
    std::fprintf(stdout, "\r%s\x1b[K", format_progress(state).c_str());
    std::fflush(stdout);
    last_draw_ = now;
    drawn_ = true;
  } else if (log_step) {
    spdlog::info("{}", format_progress(state));
  }
}

void ProgressLine::end_epoch() {
  if (terminal_ && drawn_) {
    std::fputs("\n", stdout);
    std::fflush(stdout);
  }
  drawn_ = false;
}

}  // namespace da::log
