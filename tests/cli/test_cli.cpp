// da_dist and the benchmarks as processes: exit status and the one-line
// message of each error, help per command, the override shown by
// --print-config, and the MPI test harness itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "support/process.h"

namespace da::test {
namespace {

namespace fs = std::filesystem;

ProcessResult da_dist(const std::vector<std::string>& args) { return run_process(binary_path("src/da_dist"), args); }

class Cli : public testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("da-cli"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string config(const std::string& name, const std::string& yaml) {
    write_text(dir_ + "/" + name, yaml);
    return dir_ + "/" + name;
  }
  // Expects exit status 2 and exactly one stderr line equal to `message`.
  void expect_config_error(const std::vector<std::string>& args, const std::string& message) {
    const auto r = da_dist(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err, message + "\n");
    EXPECT_EQ(r.out, "");
  }
  std::string dir_;
};

TEST_F(Cli, PrintConfigShowsOverride) {
  const auto r = da_dist({"--print-config", "--config", source_path("conf/demo.yaml"), "--set", "optimizer.lr=0.1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("optimizer:\n  name: adamw\n  lr: 0.1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("name: dann"), std::string::npos) << r.out;
}

TEST_F(Cli, PrintConfigIsResolvedYaml) {
  const std::string base = config("base.yaml", "optimizer: {name: sgd}\n");
  const std::string run = config("run.yaml", "include: base.yaml\nrun: {seed: 9}\n");
  const auto r = da_dist({"--config", run, "--print-config", "--set", "data.batch_size=3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("seed: 9"), std::string::npos);
  EXPECT_NE(r.out.find("name: sgd"), std::string::npos);
  EXPECT_NE(r.out.find("batch_size: 3"), std::string::npos);
  // The printed config is itself a valid config that prints the same.
  const std::string resolved = config("resolved.yaml", r.out);
  const auto again = da_dist({"--config", resolved, "--print-config"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
}

TEST_F(Cli, MissingConfigFile) {
  expect_config_error({"--config", dir_ + "/nope.yaml"},
                      "da_dist: config error: config file '" + dir_ + "/nope.yaml' not found");
}

TEST_F(Cli, YamlSyntaxError) {
  const std::string f = config("bad.yaml", "run:\n  seed: [1, 2\n");
  const auto r = da_dist({"--config", f});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("da_dist: config error: " + f + ":3:1: YAML syntax error: ", 0), 0u) << r.err;
}

TEST_F(Cli, UnknownKey) {
  const std::string f = config("k.yaml", "domain_adaptation:\n  methd: {name: dann}\n");
  expect_config_error({"--config", f},
                      "da_dist: config error: " + f + ": domain_adaptation.methd: unknown key, did you mean 'method'?");
}

TEST_F(Cli, UnknownKeyFromOverride) {
  const std::string f = config("o.yaml", "");
  expect_config_error({"--config", f, "--set", "data.batchsize=4"},
                      "da_dist: config error: " + f + ": data.batchsize: unknown key, did you mean 'batch_size'?");
}

TEST_F(Cli, WrongType) {
  const std::string f = config("t.yaml", "optimizer: {lr: fast}\n");
  expect_config_error({"--config", f}, "da_dist: config error: " + f + ": optimizer.lr: expected a number, got 'fast'");
}

TEST_F(Cli, OutOfRange) {
  const std::string f = config("r.yaml", "data: {batch_size: 0}\n");
  expect_config_error({"--config", f},
                      "da_dist: config error: " + f + ": data.batch_size: value 0 is out of range, must be >= 1");
  const std::string g = config("lr.yaml", "optimizer: {lr: -1}\n");
  expect_config_error({"--config", g},
                      "da_dist: config error: " + g + ": optimizer.lr: value -1 is out of range, must be > 0");
}

TEST_F(Cli, UnknownEnumValue) {
  const std::string f = config("e.yaml", "scheduler: {name: step}\n");
  expect_config_error({"--config", f}, "da_dist: config error: " + f +
                                           ": scheduler.name: unknown value 'step', valid values are 'constant', "
                                           "'poly' or 'cosine'");
}

TEST_F(Cli, UsageErrors) {
  expect_config_error({}, "da_dist: usage error: --config FILE is required (see --help)");
  expect_config_error({"--confg", "x.yaml"},
                      "da_dist: usage error: unknown option '--confg', did you mean '--config'? (see --help)");
  expect_config_error({"--config"}, "da_dist: usage error: --config needs a value");
  expect_config_error({"trian", "--config", "x"},
                      "da_dist: usage error: unknown command 'trian', did you mean 'train'?");
  expect_config_error({"--config", "x", "--log-level", "loud"},
                      "da_dist: usage error: --log-level: unknown level 'loud', valid levels are 'trace', 'debug', "
                      "'info', 'warn' or 'error'");
  expect_config_error({"predict", "--checkpoint", "c.pt", "--host-allocator", "jemalloc"},
                      "da_dist: usage error: --host-allocator: unknown mode 'jemalloc', valid modes are 'retain' or "
                      "'system'");
  expect_config_error({"evaluate", "--checkpoint", "c.pt", "--host-alocator", "system"},
                      "da_dist: usage error: unknown option '--host-alocator' for evaluate, did you mean "
                      "'--host-allocator'? (see --help)");
}

TEST_F(Cli, HelpAndVersion) {
  const auto help = da_dist({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--config", "--set", "--print-config", "--resume", "--log-level", "--version"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option;
  }
  const auto version = da_dist({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("da_dist 0.1.0\n", 0), 0u) << version.out;
  EXPECT_NE(version.out.find(std::string("Torch ") + DA_TORCH_VERSION), std::string::npos)
      << version.out;  // the one CMake found
  EXPECT_NE(version.out.find("MPI   Open MPI v4"), std::string::npos) << version.out;
  EXPECT_NE(version.out.find("HDF5  1."), std::string::npos) << version.out;
  EXPECT_NE(version.out.find("NCCL"), std::string::npos) << version.out;
  const auto keys = da_dist({"--help-config"});
  EXPECT_EQ(keys.exit_code, 0);
  EXPECT_NE(keys.out.find("optimizer.lr"), std::string::npos);
}

// --help-config lists, after the config keys, every built-in method's
// parameters with kind, default and source, and loss_weight once for all.
TEST_F(Cli, HelpConfigListsEveryMethodsParameters) {
  const auto r = da_dist({"--help-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.out.find("optimizer.lr"), r.out.find("method parameters"));
  for (const char* method : {"adabn", "advent_adversarial", "bsp", "cdan", "coral", "dann", "entropy", "fda", "mcc",
                             "mmd", "mstn", "pseudo_label", "source_only"}) {
    EXPECT_NE(r.out.find(std::string("domain_adaptation.method{name: ") + method + "}"), std::string::npos) << method;
  }
  const auto at = r.out.find("domain_adaptation.method{name: dann}.hidden_size");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
  for (const char* text : {"int >= 1", " 1024 ", "discriminator hidden width", "[Ganin et al. 2016"}) {
    EXPECT_NE(line.find(text), std::string::npos) << text << " in: " << line;
  }
  EXPECT_NE(r.out.find("domain_adaptation.method.loss_weight"), std::string::npos);
  EXPECT_NE(r.out.find("domain_adaptation.method{name: entropy}    "), std::string::npos);  // no parameters
}

// With --config, the config's plug-ins are loaded first and their methods
// listed with the others.
TEST_F(Cli, HelpConfigListsPluginMethods) {
  const std::string plugin = binary_path("tests/trainer/plugin/libda_example_plugin.so");
  const auto r = da_dist({"--help-config", "--config", config("plugin.yaml", "plugins: [" + plugin + "]\n")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto at = r.out.find("domain_adaptation.method{name: example_max_prob_gap}.margin");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[ours: penalise every pixel", at), std::string::npos);
  EXPECT_EQ(da_dist({"--help-config"}).out.find("example_max_prob_gap"), std::string::npos);
}

// Every command answers --help on stdout, with exit status 0, listing its own
// options and not another command's; `da_dist --help` lists them all.
TEST_F(Cli, EveryCommandAnswersHelpWithItsOptions) {
  const std::map<std::string, std::vector<std::string>> options = {
      {"train", {"--config", "--set", "--print-config", "--resume", "--log-level", "--help-config", "--version"}},
      {"predict",
       {"--checkpoint", "--input", "--output", "--probabilities", "--geotiff", "--scene", "--output-dir", "--window",
        "--overlap", "--confidence", "--tta", "--strip-rows", "--domain", "--batch-size", "--log-level",
        "--host-allocator"}},
      {"evaluate",
       {"--checkpoint", "--input", "--domain", "--json", "--batch-size", "--log-level", "--host-allocator"}},
      {"export", {"--checkpoint", "--output", "--domain", "--tile", "--log-level"}}};
  for (const auto& [command, names] : options) {
    for (const char* help : {"--help", "-h"}) {
      const auto r = da_dist({command, help});
      EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
      EXPECT_EQ(r.err, "") << command;
      EXPECT_NE(r.out.find("Usage: da_dist " + command + " [OPTIONS]"), std::string::npos) << r.out;
      for (const std::string& name : names) {
        EXPECT_NE(r.out.find("  " + name + " "), std::string::npos) << command << " " << name << "\n" << r.out;
      }
    }
  }
  EXPECT_EQ(da_dist({"train", "--help"}).out.find("--checkpoint"), std::string::npos);
  EXPECT_EQ(da_dist({"export", "--help"}).out.find("--input"), std::string::npos);
  // Help after options of the default command is train's.
  EXPECT_NE(da_dist({"--config", "x.yaml", "--help"}).out.find("Usage: da_dist train [OPTIONS]"), std::string::npos);
  const auto all = da_dist({"--help"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  for (const char* text : {"train", "predict", "evaluate", "export", "--checkpoint", "--tile", "exit status"}) {
    EXPECT_NE(all.out.find(text), std::string::npos) << text << "\n" << all.out;
  }
}

TEST_F(Cli, UsageErrorsOfTheCommands) {
  expect_config_error({"predict", "--checkpont", "c.pt"},
                      "da_dist: usage error: unknown option '--checkpont' for predict, did you mean '--checkpoint'? "
                      "(see --help)");
  expect_config_error(
      {"train", "--prnt-config"},
      "da_dist: usage error: unknown option '--prnt-config', did you mean '--print-config'? (see --help)");
  expect_config_error({"exprot", "--checkpoint", "c.pt"},
                      "da_dist: usage error: unknown command 'exprot', did you mean 'export'?");
  expect_config_error({"predict", "--checkpoint", "c.pt", "--scene", "a.tif", "--output-dir", "o", "--window", "big"},
                      "da_dist: usage error: --window: expected a positive integer, got 'big'");
  expect_config_error({"predict", "--checkpoint", "c.pt", "--scene", "a.tif", "--output-dir", "o", "--tta", "d8"},
                      "da_dist: usage error: --tta: unknown mode 'd8', valid modes are 'none', 'flips' or 'd4'");
  expect_config_error({"evaluate", "--checkpoint", "c.pt", "--input", "a.h5", "--domain", "both"},
                      "da_dist: usage error: --domain: unknown domain 'both', valid domains are 'source' or 'target'");
  expect_config_error({"--config", "x.yaml", "--print-config=yes"},
                      "da_dist: usage error: --print-config takes no value");
  expect_config_error({"--config", "x.yaml", "--set"}, "da_dist: usage error: --set needs a value");
  expect_config_error({"--config", "x.yaml", "extra"},
                      "da_dist: usage error: unexpected argument 'extra' (see --help)");
}

// Repeated --set overrides apply in order; --config=FILE and --set=K=V work as
// well as the separated forms; the last of a repeated --config wins, as before.
TEST_F(Cli, RepeatedAndInlineOptions) {
  const std::string f = config("c.yaml", "");
  const auto r = da_dist({"--config=" + dir_ + "/nope.yaml", "--config", f, "--print-config", "--set",
                          "data.batch_size=3", "--set=data.batch_size=5", "--set", "run.seed=11"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("batch_size: 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seed: 11"), std::string::npos) << r.out;
}

// The benchmarks parse the same way: --help answers (on each subcommand of
// da_bench_loader), an unknown option gets the nearest one, a bad value exits 2.
TEST(Benchmarks, HelpAndUsageErrors) {
  const auto bench = [](const std::string& name, const std::vector<std::string>& args) {
    return run_process(binary_path(name), args);
  };
  const std::map<std::string, std::string> own_option = {
      {"generate", "--dtype"}, {"raw", "--buffer-kib"}, {"loader", "--workers"}, {"chunks", "--threads"},
      {"breakdown", "--batch"}};
  for (const auto& [command, option] : own_option) {
    const auto r = bench("tools/bench/da_bench_loader", {command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: da_bench_loader " + command), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("  " + option + " "), std::string::npos) << command << "\n" << r.out;
  }
  auto r = bench("tools/bench/da_bench_loader", {"loader", "a.h5", "--wokers", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(
      r.err.rfind("da_bench_loader: unknown option '--wokers' for loader, did you mean '--workers'? (see --help)\n", 0),
      0u)
      << r.err;
  r = bench("tools/bench/da_bench_loader", {"generate", "--out", "x.h5", "--dtype", "int8"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("da_bench_loader: --dtype: unknown dtype 'int8', valid dtypes are 'uint8' or 'uint16'\n", 0),
            0u)
      << r.err;

  r = bench("tools/bench_train/da_bench_step", {"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* option : {"--config", "--set", "--steps", "--warmup", "--dump-state"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
  }
  r = bench("tools/bench_train/da_bench_step", {"--config", "x.yaml", "--steps", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("da_bench_step: --steps: expected a positive integer, got '0'\n", 0), 0u) << r.err;
  r = bench("tools/bench_train/da_bench_step", {"--steps", "3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("da_bench_step: --config is required\n", 0), 0u) << r.err;

  r = bench("tools/bench_comm/allreduce_bench", {"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* option : {"--min-bytes", "--max-bytes", "--factor", "--iters", "--no-raw", "--inject-error"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
  }
  r = bench("tools/bench_comm/allreduce_bench", {"--max-byte", "1M"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("allreduce_bench: unknown option '--max-byte', did you mean '--max-bytes'? (see --help)\n", 0),
            0u)
      << r.err;
  r = bench("tools/bench_comm/allreduce_bench", {"--min-bytes", "6"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("allreduce_bench: --min-bytes must be a positive multiple of 4\n", 0), 0u) << r.err;
  r = bench("tools/bench_comm/allreduce_bench", {"--max-bytes", "2X"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("allreduce_bench: --max-bytes: bad suffix: 2X\n", 0), 0u) << r.err;
}

TEST_F(Cli, RuntimeFailureExitsOne) {
  // The run directory cannot be created under a regular file.
  write_text(dir_ + "/blocker", "x");
  const std::string f = config("run.yaml", "run: {output_dir: " + dir_ + "/blocker}\n");
  const auto r = da_dist({"--config", f});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("da_dist: error on rank 0: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

// conf/run.yaml, the GPU template of the README and slurm/: it resolves to
// what it promises, and with only the device (and the archives) overridden it
// trains on the CPU.
TEST_F(Cli, RunTemplateParsesAndTrainsOnTheCpu) {
  const auto printed = da_dist({"--print-config", "--config", source_path("conf/run.yaml")});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  for (const char* expected : {"encoder: resnet34", "precision: bf16", "memory_format: channels_last",
                               "sync_bn: true", "name: dann", "batch_size: 8"}) {
    EXPECT_NE(printed.out.find(expected), std::string::npos) << expected << " in\n" << printed.out;
  }
  const auto synth = run_process(binary_path("tools/da_tiles/da_tiles"), {"synth", "--out", dir_ + "/data", "--tiles",
                                                                          "4", "--val-tiles", "2", "--size", "32"});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  std::vector<std::string> args{"--config", source_path("conf/run.yaml"), "--set", "run.device=cpu",
                                "--set", "run.output_dir=" + dir_ + "/runs", "--set", "run.max_epochs=1",
                                "--set", "run.log_every_n_steps=1", "--set", "data.batch_size=2",
                                "--set", "data.workers=0"};
  for (const std::string domain : {"source", "target"}) {
    for (const std::string split : {"train", "val"}) {
      args.insert(args.end(), {"--set", "data." + domain + "." + split + "=[" + dir_ + "/data/" + domain + "_" +
                                            split + ".h5]"});
    }
  }
  const auto trained = da_dist(args);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE((trained.out + trained.err).find("model unet/resnet34"), std::string::npos) << trained.err;
  const std::string metrics = read_text(dir_ + "/runs/run/metrics.jsonl");
  EXPECT_NE(metrics.find("\"kind\": \"step\", \"epoch\": 0, \"step\": 2"), std::string::npos) << metrics;
  EXPECT_TRUE(fs::exists(dir_ + "/runs/run/checkpoints/last.pt"));
}

// The MPI harness: a test failing on rank 1 only fails the mpirun entry, and
// the failure is reported with its rank.
TEST(MpiHarness, FailureOnAnyRankFailsTheRun) {
  const auto r = run_process("mpirun", {"-np", "2", "--oversubscribe", binary_path("tests/dist/test_dist_mpi"),
                                        "--gtest_also_run_disabled_tests", "--gtest_filter=HarnessSelfCheck.*"},
                             mpirun_env());
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("[rank 1] FAILED"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("[rank 0] FAILED"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace da::test
