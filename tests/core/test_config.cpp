// The configuration: defaults, overrides, includes and every error case, each
// checked for the exact path and wording a user sees.
#include <gtest/gtest.h>

#include <filesystem>

#include "config/errors.h"
#include "config/loader.h"
#include "config/suggest.h"
#include "support/process.h"

namespace da::config {
namespace {

namespace fs = std::filesystem;
using test::write_text;

// The message of the ConfigError that parsing `yaml` throws ("" if none).
std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, "test.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("method", "methd"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Suggest, ClosestMatchOnlyWhenPlausible) {
  EXPECT_EQ(closest_match("methd", {"feature_layers", "method", "step_mode"}), "method");
  EXPECT_EQ(closest_match("zzzzzzzz", {"lr", "name"}), "");
  EXPECT_EQ(quoted_list({"a", "b", "c"}), "'a', 'b' or 'c'");
}

TEST(Config, DefaultsFromEmptyDocument) {
  const Config c = parse_config("", "demo.yaml");
  EXPECT_EQ(c.run.seed, 42);
  EXPECT_EQ(c.run.name, "demo");  // from the file name
  EXPECT_EQ(c.optimizer.name, "adamw");
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 1e-3);
  EXPECT_EQ(c.data.batch_size, 8);
  EXPECT_DOUBLE_EQ(c.dist.bucket_mb, 25.0);
  EXPECT_EQ(c.domain_adaptation.step_mode, "epoch");
}

TEST(Config, ReadsEveryKind) {
  const Config c = parse_config(R"(
run: {seed: 7, name: exp1, device: cpu}
data:
  source: {train: [a.h5, "b*.h5"], val: v.h5}
  batch_size: 4
  augmentation: {hflip: false, crop_size: 64}
  normalize: {mode: config, mean: [1, 2.5], std: [3, 4]}
optimizer: {name: sgd, lr: 3e-4, nesterov: yes}
domain_adaptation:
  feature_layers: [encoder.layer3, encoder.layer4]
  method: {name: dann, hidden_size: 512}
plugins: [libmine.so]
)",
                                "x.yaml");
  EXPECT_EQ(c.run.seed, 7);
  EXPECT_EQ(c.run.name, "exp1");
  EXPECT_EQ(c.data.source.train, (std::vector<std::string>{"a.h5", "b*.h5"}));
  EXPECT_EQ(c.data.source.val, (std::vector<std::string>{"v.h5"}));  // a single string is a list of one
  EXPECT_FALSE(c.data.augmentation.hflip);
  EXPECT_TRUE(c.data.augmentation.vflip);
  EXPECT_EQ(c.data.augmentation.crop_size, 64);
  EXPECT_EQ(c.data.normalize.mean, (std::vector<double>{1, 2.5}));
  EXPECT_EQ(c.optimizer.name, "sgd");
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 3e-4);
  EXPECT_TRUE(c.optimizer.nesterov);
  EXPECT_EQ(c.domain_adaptation.feature_layers.size(), 2u);
  EXPECT_EQ(c.domain_adaptation.method["name"].as<std::string>(), "dann");
  EXPECT_EQ(c.domain_adaptation.method["hidden_size"].as<int>(), 512);
  EXPECT_EQ(c.plugins, (std::vector<std::string>{"libmine.so"}));
}

TEST(Config, ResolvedYamlRoundTripsExactly) {
  const Config c = parse_config(
      "optimizer: {lr: 0.00012345678901234}\ndomain_adaptation: {method: {name: dann, hidden_size: 64}}\n",
      "r.yaml");
  const std::string once = to_yaml(c);
  const Config again = parse_config(once, "r.yaml");
  EXPECT_EQ(to_yaml(again), once);
  EXPECT_EQ(again.optimizer.lr, 0.00012345678901234);
  EXPECT_NE(once.find("hidden_size: 64"), std::string::npos) << once;
}

TEST(Config, OverridesInDottedForm) {
  const Config c = parse_config("optimizer: {lr: 0.01}\n", "o.yaml",
                                {"optimizer.lr=0.1", "data.batch_size=16", "data.source.train=[x.h5, y.h5]",
                                 "domain_adaptation.method.name=entropy"});
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.1);
  EXPECT_EQ(c.data.batch_size, 16);
  EXPECT_EQ(c.data.source.train, (std::vector<std::string>{"x.h5", "y.h5"}));
  EXPECT_EQ(c.domain_adaptation.method["name"].as<std::string>(), "entropy");
}

TEST(Config, OverrideErrors) {
  EXPECT_EQ(error_of("", {"optimizer.lrr=0.1"}), "test.yaml: optimizer.lrr: unknown key, did you mean 'lr'?");
  EXPECT_EQ(error_of("", {"optimizer.lr"}),
            "--set 'optimizer.lr': expected KEY=VALUE, e.g. --set optimizer.lr=3e-4");
  EXPECT_EQ(error_of("", {"optimizer.lr.x=1", "optimizer.lr=2"}), "");  // later --set wins
  EXPECT_EQ(error_of("optimizer: {lr: 0.1}", {"optimizer.lr.x=1"}), "--set optimizer.lr.x: 'optimizer.lr' is not a section");
}

class ConfigFiles : public testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("da-config"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string load_error(const std::string& file) {
    try {
      load_config(file);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_;
};

TEST_F(ConfigFiles, IncludeMergesKeyByKey) {
  write_text(path("base/base.yaml"), "optimizer: {name: sgd, lr: 0.1, momentum: 0.8}\nrun: {seed: 1}\n");
  write_text(path("mid.yaml"), "include: base/base.yaml\nrun: {max_epochs: 3}\n");
  write_text(path("run.yaml"), "include: [mid.yaml]\noptimizer: {lr: 0.05}\n");
  const Config c = load_config(path("run.yaml"));
  EXPECT_EQ(c.optimizer.name, "sgd");            // from base
  EXPECT_DOUBLE_EQ(c.optimizer.momentum, 0.8);   // from base
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.05);        // the including file wins
  EXPECT_EQ(c.run.seed, 1);
  EXPECT_EQ(c.run.max_epochs, 3);
  EXPECT_EQ(c.run.name, "run");
}

TEST_F(ConfigFiles, IncludeErrors) {
  write_text(path("a.yaml"), "include: b.yaml\n");
  write_text(path("b.yaml"), "include: a.yaml\n");
  EXPECT_EQ(load_error(path("a.yaml")).find(path("b.yaml") + ": include cycle through"), 0u)
      << load_error(path("a.yaml"));
  write_text(path("c.yaml"), "include: nope.yaml\n");
  EXPECT_EQ(load_error(path("c.yaml")), path("c.yaml") + ": included file '" + path("nope.yaml") + "' not found");
}

// A device is refused rather than read forever; a name the file system
// refuses is the system's reason; quoted text stays on one line.
TEST_F(ConfigFiles, IncludesThatCannotBeReadAreNamed) {
  write_text(path("dev.yaml"), "include: /dev/zero\n");
  EXPECT_EQ(load_error(path("dev.yaml")), path("dev.yaml") + ": included file '/dev/zero' is not a regular file");
  const std::string long_name(300, 'x');
  write_text(path("long.yaml"), "include: " + long_name + ".yaml\n");
  EXPECT_EQ(load_error(path("long.yaml")),
            path("long.yaml") + ": included file '" + path(long_name + ".yaml") + "': File name too long");
  EXPECT_STREQ(ConfigError("a\nb\tc\x01" "d\x7f\u00e9").what(), "a\\nb\\tc\\x01d\\x7f\u00e9");
}

TEST_F(ConfigFiles, MissingFile) {
  EXPECT_EQ(load_error(path("absent.yaml")), "config file '" + path("absent.yaml") + "' not found");
}

TEST_F(ConfigFiles, SyntaxErrorHasLineAndColumn) {
  write_text(path("bad.yaml"), "run:\n  seed: 1\n  name: [unclosed\n");
  const std::string msg = load_error(path("bad.yaml"));
  EXPECT_EQ(msg.rfind(path("bad.yaml") + ":4:1: YAML syntax error: ", 0), 0u) << msg;
}

TEST(ConfigErrors, UnknownKeyWithClosestValidKey) {
  EXPECT_EQ(error_of("domain_adaptation:\n  methd: {name: dann}\n"),
            "test.yaml: domain_adaptation.methd: unknown key, did you mean 'method'?");
  EXPECT_EQ(error_of("optimiser: {lr: 1}\n"), "test.yaml: optimiser: unknown key, did you mean 'optimizer'?");
  EXPECT_EQ(error_of("data: {augmentation: {hflp: true}}\n"),
            "test.yaml: data.augmentation.hflp: unknown key, did you mean 'hflip'?");
}

TEST(ConfigErrors, UnknownKeyWithoutNearMatchListsValidKeys) {
  EXPECT_EQ(error_of("logging: {qqqqqqqqqq: 1}\n"),
            "test.yaml: logging.qqqqqqqqqq: unknown key; valid keys of 'logging' are 'level', 'tensorboard' or "
            "'progress'");
}

TEST(ConfigErrors, WrongType) {
  EXPECT_EQ(error_of("optimizer: {lr: fast}\n"), "test.yaml: optimizer.lr: expected a number, got 'fast'");
  EXPECT_EQ(error_of("data: {batch_size: 2.5}\n"), "test.yaml: data.batch_size: expected an integer, got '2.5'");
  EXPECT_EQ(error_of("optimizer: {nesterov: maybe}\n"),
            "test.yaml: optimizer.nesterov: expected true or false, got 'maybe'");
  EXPECT_EQ(error_of("run: {memory_format: nhwc}\n"),
            "test.yaml: run.memory_format: unknown value 'nhwc', valid values are 'auto', 'channels_last' or "
            "'contiguous'");
  EXPECT_EQ(error_of("run: {memory_formt: auto}\n"), "test.yaml: run.memory_formt: unknown key, did you mean 'memory_format'?");
  EXPECT_EQ(error_of("run: {host_allocator: jemalloc}\n"),
            "test.yaml: run.host_allocator: unknown value 'jemalloc', valid values are 'retain' or 'system'");
  EXPECT_EQ(error_of("run: {host_alocator: retain}\n"),
            "test.yaml: run.host_alocator: unknown key, did you mean 'host_allocator'?");
  EXPECT_EQ(error_of("run: 5\n"), "test.yaml: run: expected a mapping, got '5'");
  EXPECT_EQ(error_of("data: {normalize: {mean: 3}}\n"),
            "test.yaml: data.normalize.mean: expected a list of numbers, got '3'");
  EXPECT_EQ(error_of("run: {name: [a, b]}\n"), "test.yaml: run.name: expected a string, got a list");
}

TEST(ConfigErrors, OutOfRange) {
  EXPECT_EQ(error_of("data: {batch_size: 0}\n"),
            "test.yaml: data.batch_size: value 0 is out of range, must be >= 1");
  EXPECT_EQ(error_of("optimizer: {lr: -0.1}\n"), "test.yaml: optimizer.lr: value -0.1 is out of range, must be > 0");
  EXPECT_EQ(error_of("optimizer: {momentum: 1.5}\n"),
            "test.yaml: optimizer.momentum: value 1.5 is out of range, must be >= 0, <= 1");
  EXPECT_EQ(error_of("data: {normalize: {mode: config, mean: [1], std: [0]}}\n"),
            "test.yaml: data.normalize.std[0]: value 0 is out of range, must be > 0");
}

TEST(ConfigErrors, UnknownEnumValueListsValidOnes) {
  EXPECT_EQ(error_of("optimizer: {name: adam}\n"),
            "test.yaml: optimizer.name: unknown value 'adam', valid values are 'sgd' or 'adamw' (did you mean "
            "'adamw'?)");
  EXPECT_EQ(error_of("dist: {backend: gloo}\n"),
            "test.yaml: dist.backend: unknown value 'gloo', valid values are 'auto', 'nccl' or 'mpi'");
}

TEST(ConfigErrors, CrossFieldChecks) {
  EXPECT_EQ(error_of("data: {normalize: {mode: config, mean: [1, 2], std: [1]}}\n"),
            "test.yaml: data.normalize: mean has 2 values but std has 1");
  EXPECT_EQ(error_of("data: {normalize: {mode: config}}\n"),
            "test.yaml: data.normalize: mode 'config' needs both mean and std");
  EXPECT_EQ(error_of("optimizer: {betas: [0.9]}\n"), "test.yaml: optimizer.betas: expected 2 values, got 1");
  EXPECT_EQ(error_of("domain_adaptation: {method: dann}\n"),
            "test.yaml: domain_adaptation.method: expected a mapping with 'name' or a list of them");
}

TEST(ConfigKeys, EveryKeyDocumented) {
  const auto keys = describe_keys();
  ASSERT_GT(keys.size(), 50u);
  bool found_lr = false;
  for (const auto& k : keys) {
    EXPECT_FALSE(k.doc.empty()) << k.path;
    if (k.path == "optimizer.lr") {
      found_lr = true;
      EXPECT_EQ(k.kind, "float > 0");
    }
  }
  EXPECT_TRUE(found_lr);
}

}  // namespace
}  // namespace da::config
