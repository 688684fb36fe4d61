#include "setup/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include <stdexcept>

#include "io/checkpoint_file.h"

namespace da::setup {
namespace {

constexpr std::int64_t kFormatVersion = 1;

// Runs `read`, turning Torch's errors about what a damaged file holds (an
// entry of the wrong type, an invalid RNG state) into one line naming it.
template <typename Read>
auto naming_damage(const std::string& path, Read read) {
  try {
    return read();
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw std::runtime_error("checkpoint " + path + " is damaged: " + what.substr(0, what.find('\n')));
  }
}

c10::IValue tensor_dict(const torch::nn::Module& model) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& item : model.named_parameters()) dict.insert(item.key(), item.value().detach());
  for (const auto& item : model.named_buffers()) dict.insert(item.key(), item.value());
  return dict;
}

c10::IValue scalar_dict(const std::map<std::string, double>& values) {
  c10::Dict<std::string, double> dict;
  for (const auto& [key, value] : values) dict.insert(key, value);
  return dict;
}

std::vector<std::int64_t> progress_values(const TrainingProgress& p) {
  return {kFormatVersion, p.epoch, p.global_step, p.position.epoch, p.position.step, p.position.cycling_epoch,
          p.position.cycling_batch};
}

c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key, const std::string& path) {
  c10::IValue value;
  if (!archive.try_read(key, value)) {
    throw std::runtime_error("checkpoint " + path + ": no '" + key + "' entry (not a da_dist training checkpoint?)");
  }
  return value;
}

models::StateDict read_tensor_dict(torch::serialize::InputArchive& archive, const std::string& key,
                                   const std::string& path) {
  models::StateDict state;
  for (const auto& entry : read_value(archive, key, path).toGenericDict()) {
    state[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return state;
}

models::StateDict read_tensor_dict_from(const std::string& path, const std::string& key) {
  torch::serialize::InputArchive archive;
  io::load_checkpoint_file(archive, path, c10::kCPU);
  return naming_damage(path, [&] { return read_tensor_dict(archive, key, path); });
}

std::string method_key(std::size_t i) { return "method_" + std::to_string(i); }

std::map<std::string, double> read_scalars(torch::serialize::InputArchive& archive, const std::string& path) {
  std::map<std::string, double> scalars;
  for (const auto& entry : read_value(archive, "scalars", path).toGenericDict()) {
    scalars[entry.key().toStringRef()] = entry.value().toDouble();
  }
  return scalars;
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointParts& parts, const TrainingProgress& progress,
                     const std::string& config_yaml) {
  torch::serialize::OutputArchive archive;
  archive.write("progress", c10::IValue(progress_values(progress)));
  archive.write("scalars", scalar_dict(progress.scalars));
  archive.write("config", c10::IValue(config_yaml));
  archive.write("model", tensor_dict(parts.model));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < parts.methods.size(); ++i) {
    names.push_back(parts.methods[i].method->name());
    torch::serialize::OutputArchive method_archive;
    parts.methods[i].method->save_state(method_archive);
    archive.write(method_key(i), method_archive);
  }
  archive.write("methods", c10::IValue(names));
  // The auxiliary nets' tensors again as one flat dict, for tools and tests
  // that inspect a checkpoint without building the methods.
  c10::Dict<std::string, at::Tensor> aux;
  for (std::size_t i = 0; i < parts.methods.size(); ++i) {
    if (auto module = parts.methods[i].method->module()) {
      const std::string prefix = names[i] + "." ;
      for (const auto& item : module->named_parameters()) aux.insert(prefix + item.key(), item.value().detach());
      for (const auto& item : module->named_buffers()) aux.insert(prefix + item.key(), item.value());
    }
  }
  archive.write("method_tensors", c10::IValue(aux));
  if (parts.optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    parts.optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
  io::save_checkpoint_file(archive, path);
}

namespace {

TrainingProgress restore(const std::string& path, const CheckpointParts& parts) {
  // Onto the device the model now lives on: the optimizer's state follows.
  const auto parameters = parts.model.parameters();
  const c10::Device device = parameters.empty() ? c10::Device(c10::kCPU) : parameters.front().device();
  torch::serialize::InputArchive archive;
  io::load_checkpoint_file(archive, path, device);
  const std::vector<std::int64_t> values = read_value(archive, "progress", path).toIntVector();
  if (values.size() != 7 || values[0] != kFormatVersion) {
    throw std::runtime_error("checkpoint " + path + ": unsupported checkpoint format");
  }
  TrainingProgress progress;
  progress.epoch = values[1];
  progress.global_step = values[2];
  progress.position = {values[3], values[4], values[5], values[6]};
  progress.scalars = read_scalars(archive, path);

  const models::StateDict state = read_tensor_dict(archive, "model", path);
  try {
    models::load_state_dict(parts.model, state, models::LoadOptions{});
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path + ": the model does not match: " + e.what());
  }

  std::vector<std::string> saved;
  for (const auto& name : read_value(archive, "methods", path).toListRef()) saved.push_back(name.toStringRef());
  std::vector<std::string> current;
  for (const auto& wm : parts.methods) current.push_back(wm.method->name());
  if (saved != current) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return "[" + s + "]";
    };
    throw std::runtime_error("checkpoint " + path + " was trained with methods " + list(saved) +
                             " but the configuration has " + list(current));
  }
  for (std::size_t i = 0; i < parts.methods.size(); ++i) {
    torch::serialize::InputArchive method_archive;
    archive.read(method_key(i), method_archive);
    try {
      parts.methods[i].method->load_state(method_archive);
    } catch (const std::exception& e) {
      throw std::runtime_error("checkpoint " + path + ": state of method " + current[i] + " does not match: " +
                               std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
    }
  }
  if (parts.optimizer) {
    torch::serialize::InputArchive optimizer_archive;
    if (!archive.try_read("optimizer", optimizer_archive)) {
      throw std::runtime_error("checkpoint " + path + " holds no optimizer state");
    }
    parts.optimizer->load(optimizer_archive);
  }
  at::Tensor rng;
  archive.read("rng_cpu", rng);
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle on the default generator
  generator.set_state(rng.cpu());  // read onto the model's device with the rest
  return progress;
}

}  // namespace

TrainingProgress load_checkpoint(const std::string& path, const CheckpointParts& parts) {
  return naming_damage(path, [&] { return restore(path, parts); });
}

models::StateDict read_checkpoint_model(const std::string& path) { return read_tensor_dict_from(path, "model"); }

models::StateDict read_checkpoint_method_tensors(const std::string& path) {
  return read_tensor_dict_from(path, "method_tensors");
}

std::map<std::string, double> read_checkpoint_scalars(const std::string& path) {
  torch::serialize::InputArchive archive;
  io::load_checkpoint_file(archive, path, c10::kCPU);
  return naming_damage(path, [&] { return read_scalars(archive, path); });
}

std::string read_checkpoint_config(const std::string& path) {
  torch::serialize::InputArchive archive;
  io::load_checkpoint_file(archive, path, c10::kCPU);
  return naming_damage(path, [&] { return read_value(archive, "config", path).toStringRef(); });
}

}  // namespace da::setup
