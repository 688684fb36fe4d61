#include "models/weights.h"

#include "models/domain_batch_norm.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/serialize.h>
#include <torch/utils.h>

namespace da::models {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string shape_string(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// Parameters and buffers of `model` by full dotted name.
std::map<std::string, at::Tensor> model_entries(torch::nn::Module& model) {
  std::map<std::string, at::Tensor> entries;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) entries[item.key()] = item.value();
  for (const auto& item : model.named_buffers(/*recurse=*/true)) entries[item.key()] = item.value();
  return entries;
}

// For every DomainBatchNorm2d of `model`: "<bn>.target." -> "<bn>." (prefixes of the full dotted names).
std::map<std::string, std::string> dsbn_target_prefixes(torch::nn::Module& model) {
  std::map<std::string, std::string> prefixes;
  for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (item.value()->as<DomainBatchNorm2d>()) prefixes[item.key() + ".target."] = item.key() + ".";
  }
  return prefixes;
}

// The source-branch key for a DSBN target-branch key ("" when `key` is not one).
std::string dsbn_source_key(const std::map<std::string, std::string>& prefixes, const std::string& key) {
  for (const auto& [target, source] : prefixes) {
    if (starts_with(key, target)) return source + key.substr(target.size());
  }
  return "";
}

}  // namespace

LoadOptions torchvision_encoder_options() {
  LoadOptions options;
  options.prefix = "encoder.";
  options.ignored_prefixes = {"fc."};
  return options;
}

StateDict read_state_dict(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open weights file " + path);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read weights file " + path + " (" + e.what_without_backtrace() +
                             "); a file written by torch.save(model.state_dict()) must first be converted with "
                             "tools/convert_state_dict.py");
  }
  if (!value.isGenericDict()) {
    throw std::runtime_error("weights file " + path + " holds a " + value.tagKind() +
                             ", not a dict of tensors; convert it with tools/convert_state_dict.py");
  }
  StateDict state;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      throw std::runtime_error("weights file " + path +
                               " is not a dict from names to tensors; convert it with tools/convert_state_dict.py");
    }
    state[item.key().toStringRef()] = item.value().toTensor();
  }
  return state;
}

LoadReport load_state_dict(torch::nn::Module& model, const StateDict& state, const LoadOptions& options) {
  const std::map<std::string, at::Tensor> entries = model_entries(model);
  LoadReport report;
  std::vector<std::string> mismatched;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (destination, source)
  std::set<std::string> seen;                             // model keys found in the file
  for (const auto& entry : state) {
    const std::string& file_key = entry.first;  // named, not a structured binding: lambdas capture it (C++17)
    const at::Tensor& tensor = entry.second;
    const bool ignored = std::any_of(options.ignored_prefixes.begin(), options.ignored_prefixes.end(),
                                     [&](const std::string& p) { return starts_with(file_key, p); });
    if (ignored) continue;
    const std::string key = options.prefix + file_key;
    const auto it = entries.find(key);
    if (it == entries.end()) {
      report.unexpected.push_back(key);
      continue;
    }
    seen.insert(key);
    if (!it->second.sizes().equals(tensor.sizes())) {
      mismatched.push_back(key + ": file " + shape_string(tensor) + " vs model " + shape_string(it->second));
      continue;
    }
    copies.emplace_back(it->second, tensor);
  }
  const std::map<std::string, std::string> dsbn_prefixes =
      options.dsbn_target_from_source ? dsbn_target_prefixes(model) : std::map<std::string, std::string>{};
  std::vector<std::pair<at::Tensor, at::Tensor>> fills;  // (target branch, source branch), after `copies`
  for (const auto& [key, tensor] : entries) {
    if (!starts_with(key, options.prefix) || seen.count(key)) continue;
    const std::string source_key = dsbn_source_key(dsbn_prefixes, key);
    if (!source_key.empty() && entries.count(source_key)) {
      report.target_from_source.push_back(key);
      fills.emplace_back(tensor, entries.at(source_key));
    } else {
      report.missing.push_back(key);
    }
  }

  std::string problems;
  if (options.strict && !report.missing.empty()) problems += "; missing keys: " + join(report.missing);
  if (options.strict && !report.unexpected.empty()) problems += "; unexpected keys: " + join(report.unexpected);
  if (!mismatched.empty()) problems += "; shape mismatches: " + join(mismatched);
  if (!problems.empty()) throw std::runtime_error("load_state_dict: " + problems.substr(2));

  torch::NoGradGuard no_grad;
  for (auto& [destination, source] : copies) destination.copy_(source);
  for (auto& [destination, source] : fills) destination.copy_(source);
  return report;
}

LoadReport load_weights(torch::nn::Module& model, const std::string& path, const LoadOptions& options) {
  const StateDict state = read_state_dict(path);
  try {
    return load_state_dict(model, state, options);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + " (file " + path + ")");
  }
}

}  // namespace da::models
