#include "trainer/training_fixture.h"

#include <filesystem>
#include <stdexcept>

#include "support/process.h"

namespace da::test {

namespace {

// ctest runs every test in a process of its own: each makes the data once
// and removes it when the process ends.
struct SynthData {
  std::string dir = make_temp_dir("da_trainer_data");
  SynthData() {
    const ProcessResult r = run_process(binary_path("tools/da_tiles/da_tiles"),
                                        {"synth", "--out", dir, "--tiles", "16", "--val-tiles", "8", "--size", "32"});
    if (r.exit_code != 0) {
      std::filesystem::remove_all(dir);
      throw std::runtime_error("da_tiles synth failed: " + r.err);
    }
  }
  ~SynthData() { std::filesystem::remove_all(dir); }
  SynthData(const SynthData&) = delete;
  SynthData& operator=(const SynthData&) = delete;
};

}  // namespace

const std::string& synth_data_dir() {
  static const SynthData data;
  return data.dir;
}

config::Config training_config(const std::string& run_dir, const std::string& method_yaml,
                               const std::vector<std::string>& overrides) {
  const std::string& data = synth_data_dir();
  const std::string yaml = "run: {output_dir: " + run_dir + ", name: run, seed: 3, max_epochs: 4, log_every_n_steps: 2}\n"
                           "data:\n"
                           "  source: {train: [" + data + "/source_train.h5], val: [" + data + "/source_val.h5]}\n"
                           "  target: {train: [" + data + "/target_train.h5], val: [" + data + "/target_val.h5]}\n"
                           "  batch_size: 4\n"
                           "  workers: 0\n"
                           "  normalize: {mode: archive}\n"
                           "model: {encoder: tiny}\n"
                           "optimizer: {name: adamw, lr: 1.0e-2}\n"
                           "domain_adaptation:\n"
                           "  feature_layers: [encoder.layer4]\n"
                           "  method: " + method_yaml + "\n"
                           "  step_mode: batch\n"
                           "logging: {tensorboard: false, level: warn}\n"
                           "callbacks:\n"
                           "  checkpoint: {every_n_epochs: 1, keep: 4}\n";
  const std::string path = run_dir + ".yaml";
  write_text(path, yaml);
  return config::load_config(path, overrides);
}

}  // namespace da::test
