// export: the TorchScript file run by PyTorch (tests/inference/check_export.py)
// gives the model's logits at the training tile size and a larger
// non-square one, for either DSBN branch; its JSON describes bands, classes,
// normalisation and tile size; the export command's usage errors, and under
// mpirun only rank 0 writes.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "inference/export.h"
#include "inference/inference_fixture.h"
#include "models/segmentation_model.h"
#include "support/process.h"

namespace da::test {
namespace {

namespace fs = std::filesystem;

void write_floats(const std::string& path, const at::Tensor& values) {
  const at::Tensor v = values.to(at::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data_ptr<float>()), static_cast<std::streamsize>(v.numel() * sizeof(float)));
  ASSERT_TRUE(out.good()) << path;
}

// Runs an exported model with PyTorch (tests/inference/check_export.py, which
// also checks its JSON against it) on two deterministic inputs, the training
// tile size and a larger non-square size, and returns the largest difference
// from `model`'s logits (branch `domain`); NaN when the script fails.
double pytorch_max_diff(const std::string& model_path, models::SegmentationModel& model, models::Domain domain,
                        const std::string& dir) {
  std::vector<std::string> args{source_path("tests/inference/check_export.py"), model_path,
                                inference::export_json_path(model_path)};
  torch::manual_seed(3);
  const std::vector<std::vector<std::int64_t>> shapes{{2, kBands, kSize, kSize}, {1, kBands, 64, 96}};
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const at::Tensor x = at::randn(shapes[i]);
    const std::string stem = dir + "/case" + std::to_string(i) + "_" + models::domain_name(domain);
    write_floats(stem + "_input.f32", x);
    write_floats(stem + "_expected.f32", logits_of(model, x, domain));
    std::string shape;
    for (const std::int64_t n : shapes[i]) shape += std::to_string(n) + ",";
    args.push_back(stem + "_input.f32:" + stem + "_expected.f32:" + shape + std::to_string(kClasses));
  }
  const ProcessResult r = run_process(test::python_path(), args, {}, 120);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string marker = "max_abs_diff ";
  const auto at = r.out.find(marker);
  if (r.exit_code != 0 || at == std::string::npos) return std::numeric_limits<double>::quiet_NaN();
  return std::stod(r.out.substr(at + marker.size()));
}

TEST_F(Inference, ExportedModelRunsInPyTorchLikeTheModel) {
  const std::string checkpoint = dir_ + "/archive-norm.ckpt";
  save_checkpoint(checkpoint, model_, geo_, false, "archive");
  const auto r = da_dist({"export", "--checkpoint", checkpoint, "--output", dir_ + "/exported"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> files;  // no temporaries left
  for (const auto& entry : fs::directory_iterator(dir_ + "/exported")) files.push_back(entry.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"model.json", "model.pt"}));

  const YAML::Node json = YAML::LoadFile(dir_ + "/exported/model.json");  // JSON is YAML
  EXPECT_EQ(json["format"].as<std::string>(), "da_dist-torchscript");
  EXPECT_EQ(json["version"].as<int>(), 1);
  EXPECT_EQ(json["model"].as<std::string>(), "model.pt");
  EXPECT_EQ(json["checkpoint"].as<std::string>(), checkpoint);
  EXPECT_EQ(json["encoder"].as<std::string>(), "tiny");
  EXPECT_EQ(json["domain"].as<std::string>(), "target");
  EXPECT_EQ(json["bands"]["count"].as<int>(), kBands);
  EXPECT_EQ(json["bands"]["names"].as<std::vector<std::string>>(), (std::vector<std::string>{"band0", "band1", "band2"}));
  EXPECT_EQ(json["classes"]["count"].as<int>(), kClasses);
  EXPECT_EQ(json["classes"]["names"].as<std::vector<std::string>>(), kClassNames);
  EXPECT_EQ(json["pixel_type"].as<std::string>(), "uint8");
  // normalize: archive -> the band statistics write_archive stored
  EXPECT_EQ(json["normalization"]["mean"].as<std::vector<double>>(), (std::vector<double>{120, 120, 120}));
  EXPECT_EQ(json["normalization"]["std"].as<std::vector<double>>(), (std::vector<double>{50, 51, 52}));
  EXPECT_EQ(json["tile_size"].as<int>(), kSize);
  EXPECT_EQ(json["size_multiple"].as<int>(), 32);
  EXPECT_EQ(json["input"].as<std::string>(), "float32 NCHW normalised");
  EXPECT_EQ(json["output"].as<std::string>(), "logits NCHW");

  EXPECT_LE(pytorch_max_diff(dir_ + "/exported/model.pt", model_, models::Domain::kTarget, dir_), 1e-5);
}

TEST_F(Inference, ExportKeepsTheChosenDsbnBranch) {
  models::SegmentationModel model = make_model(true);
  const std::string checkpoint = dir_ + "/dsbn.ckpt";
  save_checkpoint(checkpoint, model, geo_, true);
  torch::manual_seed(5);
  const at::Tensor x = at::randn({1, kBands, kSize, kSize});
  ASSERT_GT((logits_of(model, x, models::Domain::kSource) - logits_of(model, x, models::Domain::kTarget))
                .abs()
                .max()
                .item<double>(),
            1e-3)
      << "the branches should differ for this test to mean anything";
  for (const models::Domain domain : {models::Domain::kSource, models::Domain::kTarget}) {
    inference::ExportOptions options;
    options.checkpoint = checkpoint;
    options.output = dir_ + "/dsbn-" + models::domain_name(domain) + ".pt";
    options.domain = domain;
    options.tile = 64;  // traced at 64 x 64, run at 32 x 32 and 64 x 96
    const inference::ExportResult result = inference::export_model(options);
    EXPECT_EQ(result.model_path, options.output);
    EXPECT_EQ(result.json_path, dir_ + "/dsbn-" + models::domain_name(domain) + ".json");
    EXPECT_EQ(YAML::LoadFile(result.json_path)["tile_size"].as<int>(), 64);
    EXPECT_EQ(YAML::LoadFile(result.json_path)["domain"].as<std::string>(), models::domain_name(domain));
    EXPECT_LE(pytorch_max_diff(options.output, model, domain, dir_), 1e-5) << models::domain_name(domain);
  }
}

TEST_F(Inference, ExportCommandErrorsAndRanks) {
  const std::string out = dir_ + "/model.pt";
  const auto usage = [&](const std::vector<std::string>& args, const std::string& message) {
    const auto u = da_dist(args);
    EXPECT_EQ(u.exit_code, 2) << u.err;
    EXPECT_EQ(u.err, "da_dist: usage error: " + message + "\n");
  };
  usage({"export", "--output", out}, "export: --checkpoint CKPT is required (see --help)");
  usage({"export", "--checkpoint", checkpoint_}, "export: --output FILE.pt or DIR is required (see --help)");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--domain", "both"},
        "--domain: unknown domain 'both', valid domains are 'source' or 'target'");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--tile", "48"},
        "--tile: expected a multiple of 32 (the model's stride), got '48'");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--tile", "0"},
        "--tile: expected a positive integer, got '0'");
  usage({"export", "--checkpoint", checkpoint_, "--output", out, "--input", geo_},
        "unknown option '--input' for export, did you mean '--output'? (see --help)");
  const auto missing = da_dist({"export", "--checkpoint", dir_ + "/missing.ckpt", "--output", out});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find(dir_ + "/missing.ckpt"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(out));

  // Under mpirun only rank 0 exports (one log line); the others exit 0.
  const auto two = run_process("mpirun",
                               {"-np", "2", "--oversubscribe", binary_path("src/da_dist"), "export", "--checkpoint",
                                checkpoint_, "--output", out},
                               mpirun_env(), 120);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const std::string said = two.out + two.err;
  const auto first = said.find("exported ");
  ASSERT_NE(first, std::string::npos) << said;
  EXPECT_EQ(said.find("exported ", first + 1), std::string::npos) << said;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_TRUE(fs::exists(dir_ + "/model.json"));
}

}  // namespace
}  // namespace da::test
