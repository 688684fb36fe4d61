// Rank 0's progress line during an epoch: step, throughput, time left,
// losses and lambda. On a terminal it is rewritten in place (carriage
// return) as often as every step; when stdout is not a terminal (a Slurm
// log) it is a plain log line every log_every_n_steps steps, so log files
// do not fill with carriage returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace da::log {

struct ProgressState {
  std::int64_t epoch = 0;             // 0-based
  std::int64_t epochs = 1;            // run.max_epochs
  std::int64_t step = 0;              // steps done in this epoch (1-based after the first)
  std::int64_t steps = 0;             // steps per epoch
  double images_per_s = 0;            // all ranks' source images per second this epoch
  double seconds_left = -1;           // to the end of the run; < 0: unknown
  // loss/total, loss/seg, loss/da, lambda as of the last log step (read from
  // the device once per log interval); empty before it: not shown.
  std::map<std::string, double> logs;
};

// "1:02:03" (hours:minutes:seconds) or "4:05" under an hour; "?" if < 0.
std::string format_duration(double seconds);

// "epoch 2/6 step 10/20 | 21.3 img/s | ETA 4:05 | loss 0.8123 (seg 0.1000, da 0.7123) | lambda 0.9900"
std::string format_progress(const ProgressState& state);

class ProgressLine {
 public:
  // `terminal`: write in place to stdout; otherwise log on the steps the
  // caller marks (its log interval).
  explicit ProgressLine(bool terminal);
  // Whether stdout is a terminal (and TERM is not "dumb").
  static bool stdout_is_terminal();

  void start_epoch();
  // Call after each step with the state so far (epoch, step, steps, logs
  // and epochs set by the caller; throughput and ETA are filled in here from
  // `images_per_step` and `steps_left_in_run`). `log_step`: write the plain
  // line now (when not on a terminal).
  void step(ProgressState state, double images_per_step, std::int64_t steps_left_in_run, bool log_step);
  // Ends the in-place line with a newline (terminal only).
  void end_epoch();

 private:
  bool terminal_;
  std::chrono::steady_clock::time_point epoch_start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace da::log
