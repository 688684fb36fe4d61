// All-reduce benchmark in the style of nccl-tests' all_reduce_perf: for each
// message size (float32, sum, in place) the time per operation of our
// communicator (da::dist::make_communicator, i.e. MpiCommunicator's
// MPI_Iallreduce polled to completion) against a plain blocking
// MPI_Allreduce and against MPI_Iallreduce + MPI_Wait on the same buffer,
// with algorithm and bus bandwidth:
//
//   algbw = bytes / time          busbw = algbw * 2 (n - 1) / n
//
// busbw is the rate each rank's link must sustain in a ring all-reduce, so it
// is comparable across rank counts (nccl-tests, doc/PERFORMANCE.md).
//
// Every size is also a value check on every rank, for both implementations:
// rank r fills element i with (r + 1) + (i % 7), and after one all-reduce
// every element must equal n (n + 1) / 2 + n (i % 7) exactly. The timed
// operations run on zeros (the only values an in-place sum leaves
// unchanged, so repeated operations cannot overflow) and must leave zeros.
// Any mismatch on any rank: the first one is printed and the exit status is 1.
//
//   mpirun -np 2 allreduce_bench [--min-bytes 1K] [--max-bytes 256M] [--factor 4]
//                                [--iters N | --budget-bytes 1G] [--warmup 5]
#include <mpi.h>

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "command_line/checks.h"
#include "command_line/parse.h"
#include "config/errors.h"
#include "dist/bootstrap.h"
#include "dist/communicator.h"

namespace {

struct Options {
  int64_t min_bytes = 1 << 10;
  int64_t max_bytes = int64_t{256} << 20;
  int64_t factor = 4;
  int64_t iters = 0;                        // 0: scaled by size from budget_bytes
  int64_t budget_bytes = int64_t{1} << 30;  // bytes reduced per size and implementation
  int64_t min_iters = 5;
  int64_t max_iters = 1000;
  int64_t warmup = 5;
  bool raw = true;
  int inject_error_rank = -1;  // tests the check: this rank corrupts one reduced value
};

// "4096", "4K", "64M", "1G" (binary multiples), turned into bytes.
const CLI::Validator kBytes(
    [](std::string& text) -> std::string {
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || value < 0) return "not a size: " + text;
      double scale = 1;
      const std::string suffix(end);
      if (suffix == "K" || suffix == "k" || suffix == "KiB")
        scale = 1024.0;
      else if (suffix == "M" || suffix == "MiB")
        scale = 1024.0 * 1024;
      else if (suffix == "G" || suffix == "GiB")
        scale = 1024.0 * 1024 * 1024;
      else if (!suffix.empty() && suffix != "B")
        return "bad suffix: " + text;
      text = std::to_string(static_cast<int64_t>(value * scale));
      return "";
    },
    "");

void add_options(CLI::App& app, Options& o) {
  using da::command_line::integer_at_least;
  app.add_option("--min-bytes", o.min_bytes, "smallest message (a multiple of 4)")
      ->type_name("SIZE")
      ->transform(kBytes)
      ->capture_default_str();
  app.add_option("--max-bytes", o.max_bytes, "largest message")
      ->type_name("SIZE")
      ->transform(kBytes)
      ->capture_default_str();
  app.add_option("--factor", o.factor, "ratio of consecutive sizes")->check(integer_at_least(2))->capture_default_str();
  app.add_option("--iters", o.iters, "timed iterations per size (0: from --budget-bytes)")
      ->check(integer_at_least(0))
      ->capture_default_str();
  app.add_option("--budget-bytes", o.budget_bytes, "bytes reduced per size and implementation without --iters")
      ->type_name("SIZE")
      ->transform(kBytes);
  app.add_option("--min-iters", o.min_iters, "fewest timed iterations from the budget")
      ->check(integer_at_least(1))
      ->capture_default_str();
  app.add_option("--max-iters", o.max_iters, "most timed iterations from the budget")
      ->check(integer_at_least(1))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed operations per size")
      ->check(integer_at_least(0))
      ->capture_default_str();
  app.add_flag_callback(
      "--no-raw", [&o] { o.raw = false; },
      "time only the communicator (not MPI_Allreduce and MPI_Iallreduce+MPI_Wait)");
  app.add_option("--inject-error", o.inject_error_rank, "this rank corrupts one reduced value (tests the value check)")
      ->type_name("RANK")
      ->check(integer_at_least(0));
}

// What the options must satisfy together.
void check(const Options& o) {
  using da::config::UsageError;
  if (o.min_bytes < 4 || o.min_bytes % 4 != 0) throw UsageError("--min-bytes must be a positive multiple of 4");
  if (o.max_bytes < o.min_bytes) throw UsageError("--max-bytes must be at least --min-bytes");
  if (o.max_bytes / 4 > INT32_MAX) throw UsageError("--max-bytes: at most 2^31-1 floats per MPI call");
  if (o.max_iters < o.min_iters) throw UsageError("need --min-iters <= --max-iters");
}

struct Result {
  double seconds = 0;  // per operation, the slowest rank's average
  bool ok = true;
};

class Bench {
 public:
  Bench(int rank, int size, bool inject_error) : rank_(rank), size_(size), inject_error_(inject_error) {}

  // Fills, reduces once and checks every element; then times `iters`
  // operations (after `warmup` untimed ones) on zeros and checks they stay zero.
  Result run(const char* name, at::Tensor& buf, int64_t warmup, int64_t iters,
             const std::function<void(at::Tensor&)>& all_reduce) {
    Result result;
    float* data = buf.data_ptr<float>();
    const int64_t count = buf.numel();

    for (int64_t i = 0; i < count; ++i) data[i] = static_cast<float>((rank_ + 1) + i % 7);
    all_reduce(buf);
    if (inject_error_) data[count - 1] += 1.0f;
    const float base = static_cast<float>(size_) * (size_ + 1) / 2;
    for (int64_t i = 0; i < count && result.ok; ++i) {
      const float expected = base + static_cast<float>(size_ * (i % 7));
      if (data[i] != expected) {
        std::fprintf(stderr, "[rank %d] %s, %lld floats: element %lld is %g, expected %g\n", rank_, name,
                     static_cast<long long>(count), static_cast<long long>(i), data[i], expected);
        result.ok = false;
      }
    }

    std::memset(data, 0, static_cast<size_t>(count) * sizeof(float));
    for (int64_t i = 0; i < warmup; ++i) all_reduce(buf);
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) all_reduce(buf);
    const double local = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
    MPI_Allreduce(&local, &result.seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

    for (int64_t i = 0; i < count && result.ok; ++i) {
      if (data[i] != 0.0f) {
        std::fprintf(stderr, "[rank %d] %s, %lld floats: after the timed loop element %lld is %g, expected 0\n",
                     rank_, name, static_cast<long long>(count), static_cast<long long>(i), data[i]);
        result.ok = false;
      }
    }
    return result;
  }

 private:
  int rank_;
  int size_;
  bool inject_error_;
};

void check_mpi(int rc, const char* call) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING] = {0};
    int length = 0;
    MPI_Error_string(rc, text, &length);
    throw std::runtime_error(std::string(call) + " failed: " + std::string(text, length));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  const auto app = da::command_line::make_app(
      "allreduce_bench",
      "All-reduce of float32 messages (sum, in place) per size: our communicator against MPI_Allreduce\n"
      "and MPI_Iallreduce+MPI_Wait, value-checked on every rank. Run it as mpirun -np N allreduce_bench.");
  app->footer(
      "Sizes are in bytes (suffixes K, M, G are binary). Without --iters the number of timed\n"
      "iterations per size is budget-bytes / size, clamped to [min-iters, max-iters].");
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_options(*app, options);
  try {
    const std::string help = da::command_line::parse(*app, argc, argv);
    if (!help.empty()) {
      std::cout << help;
      return 0;
    }
    check(options);
  } catch (const da::config::UsageError& e) {
    std::cerr << "allreduce_bench: " << e.what() << "\n" << app->help();
    return 2;
  }

  // MPI is initialised here (not only by the Session) so that the raw
  // MPI_Allreduce column also works for a process started without mpirun
  // (an MPI singleton); the Session then uses the initialised MPI.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int status = 0;
  try {
    da::dist::Session session(&argc, &argv);
    int rank = 0;
    int size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    auto comm = da::dist::make_communicator(da::dist::CommunicatorOptions{});

    const int64_t max_count = options.max_bytes / 4;
    at::Tensor storage = at::empty({max_count}, at::kFloat);
    storage.zero_();  // touch every page before timing
    Bench bench(rank, size, options.inject_error_rank == rank);

    // The implementations timed on the same buffer, in this order: ours, the
    // blocking MPI_Allreduce a hand-written MPI program would call, and the
    // same non-blocking MPI_Iallreduce ours issues but finished by MPI_Wait
    // (separates the cost of Open MPI's non-blocking algorithm from the cost
    // of our MPI_Test polling).
    struct Impl {
      const char* title;
      const char* name;
      std::function<void(at::Tensor&)> all_reduce;
      double sum_busbw = 0;
    };
    std::vector<Impl> impls;
    impls.push_back({"da::dist communicator", "da::dist all_reduce",
                     [&](at::Tensor& t) { comm->all_reduce(t, da::dist::ReduceOp::kSum); }});
    if (options.raw) {
      impls.push_back({"MPI_Allreduce", "MPI_Allreduce", [](at::Tensor& t) {
                         check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MPI_FLOAT,
                                                 MPI_SUM, MPI_COMM_WORLD),
                                   "MPI_Allreduce");
                       }});
      impls.push_back({"MPI_Iallreduce+Wait", "MPI_Iallreduce+MPI_Wait", [](at::Tensor& t) {
                         MPI_Request request = MPI_REQUEST_NULL;
                         check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MPI_FLOAT,
                                                  MPI_SUM, MPI_COMM_WORLD, &request),
                                   "MPI_Iallreduce");
                         check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
                       }});
    }

    const double bus_factor = 2.0 * (size - 1) / size;
    if (rank == 0) {
      std::printf("# all-reduce, float32, sum, in place; %d ranks; %s; communicator backend '%s'\n", size,
                  da::dist::mpi_library_version().c_str(), comm->backend().c_str());
      std::printf(
          "# time: average per operation after warm-up, slowest rank; algbw = size / time; "
          "busbw = algbw * 2(n-1)/n; GB/s = 1e9 B/s\n");
      std::printf("#%29s", "");
      for (const auto& impl : impls) std::printf(" %-29s", (std::string("--- ") + impl.title + " ").c_str());
      std::printf("\n#%11s %10s %6s", "size(B)", "count", "iters");
      for (size_t i = 0; i < impls.size(); ++i) std::printf(" %10s %8s %9s", "time(us)", "algbw", "busbw");
      std::printf("  %s\n", "check");
    }

    bool all_ok = true;
    int sizes = 0;
    for (int64_t bytes = options.min_bytes; bytes <= options.max_bytes; bytes *= options.factor) {
      const int64_t count = bytes / 4;
      int64_t iters = options.iters;
      if (iters == 0) iters = std::clamp(options.budget_bytes / bytes, options.min_iters, options.max_iters);
      const int64_t warmup = std::min(options.warmup, std::max<int64_t>(1, iters / 4));
      at::Tensor buf = storage.narrow(0, 0, count);

      std::vector<Result> results;
      int local_ok = 1;
      for (auto& impl : impls) {
        results.push_back(bench.run(impl.name, buf, warmup, iters, impl.all_reduce));
        local_ok = local_ok && results.back().ok;
      }
      int every_ok = 0;
      MPI_Allreduce(&local_ok, &every_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      all_ok = all_ok && every_ok;
      ++sizes;
      if (rank == 0) {
        std::printf(" %11lld %10lld %6lld", static_cast<long long>(bytes), static_cast<long long>(count),
                    static_cast<long long>(iters));
      }
      for (size_t i = 0; i < impls.size(); ++i) {
        const double algbw = bytes / results[i].seconds / 1e9;
        impls[i].sum_busbw += algbw * bus_factor;
        if (rank == 0) std::printf(" %10.1f %8.3f %9.3f", results[i].seconds * 1e6, algbw, algbw * bus_factor);
      }
      if (rank == 0) {
        std::printf("  %s\n", every_ok ? "ok" : "FAILED");
        std::fflush(stdout);
      }
    }
    if (rank == 0) {
      std::printf("# average busbw (GB/s):");
      for (size_t i = 0; i < impls.size(); ++i) {
        std::printf("%s %s %.3f", i == 0 ? "" : ",", impls[i].title, impls[i].sum_busbw / sizes);
      }
      std::printf("\n# %s\n", all_ok ? "values correct on every rank"
                                     : "values WRONG on at least one rank (see the messages above)");
    }
    status = all_ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_bench: %s\n", e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return status;
}
