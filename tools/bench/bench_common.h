// Shared pieces of da_bench_loader: a tiny "--name value" parser, a clock,
// and the best/median summary of repeated timings.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace da::bench {

class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& message) : std::runtime_error(message) {}
};

// "--name value" pairs after the subcommand, plus positional arguments.
class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg.rfind("--", 0) == 0) {
        if (i + 1 >= argc) throw UsageError(arg + " needs a value");
        values_[arg.substr(2)] = argv[++i];
      } else {
        positional_.push_back(arg);
      }
    }
  }
  const std::vector<std::string>& positional() const { return positional_; }
  std::string text(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  int64_t integer(const std::string& name, int64_t fallback, int64_t low, int64_t high) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != it->second.size() || value < low || value > high) {
      throw UsageError("--" + name + " " + it->second + ": expected an integer in [" + std::to_string(low) + ", " +
                       std::to_string(high) + "]");
    }
    return value;
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds (user + system) of the whole process so far.
inline double cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// Wall seconds of repeated runs, and the process's CPU seconds in each: CPU
// over wall says how many cores a run kept busy (at most 1 when a global
// lock serialises its threads, whatever the load of the machine).
struct Timings {
  std::vector<double> seconds;
  std::vector<double> cpu;
  double cpu_per_wall() const {
    double c = 0, w = 0;
    for (size_t i = 0; i < cpu.size(); ++i) c += cpu[i], w += seconds[i];
    return w > 0 ? c / w : 0;
  }
  double best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double median() const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    const size_t n = s.size();
    return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }
};

constexpr double kMiB = 1024.0 * 1024.0;

// Subcommands (each returns the process exit status).
int run_generate(const Args& args);
int run_raw(const Args& args);
int run_chunks(const Args& args);
int run_loader(const Args& args);
int run_breakdown(const Args& args);

}  // namespace da::bench
