#include "methods/dann.h"

#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "methods/feature_access.h"
#include "methods/gradient_reversal.h"
#include "methods/registry.h"

namespace da::methods {

torch::Tensor domain_loss(const torch::Tensor& source_logits, const torch::Tensor& target_logits,
                          torch::Tensor* accuracy) {
  return domain_loss(source_logits, target_logits, torch::Tensor(), accuracy);
}

torch::Tensor domain_loss(const torch::Tensor& source_logits, const torch::Tensor& target_logits,
                          const torch::Tensor& weight, torch::Tensor* accuracy) {
  const auto logits = torch::cat({source_logits, target_logits});
  const auto labels = torch::cat({torch::zeros_like(source_logits), torch::ones_like(target_logits)});
  auto options = torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions();
  if (weight.defined()) options.weight(weight);
  const auto loss = torch::nn::functional::binary_cross_entropy_with_logits(logits, labels, options);
  if (accuracy != nullptr) {
    torch::NoGradGuard no_grad;
    *accuracy = (logits.gt(0).to(labels.dtype()) == labels).to(torch::kFloat).mean();
  }
  return loss;
}

std::string layer_module_name(const std::string& layer) {
  std::string name = layer;
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

std::vector<AlignedLayer> read_aligned_layers(Params& params, const ModelInfo& model) {
  const std::string default_layer = default_feature_layer(model);
  const std::string single = params.text(
      "layer", "",
      {"feature tap to align; '' = the first of domain_adaptation.feature_layers, else encoder",
       "ours: a segmentation net has no single bottleneck; psmt's DANNMethod hooks one feature_layer (its docs "
       "suggest encoder for a U-Net)"});
  const auto names = params.list(
      "layers", {},
      {"several feature taps, one discriminator each (instead of layer)",
       "ours: multi-layer alignment (psmt's DANNMethod is limited to one layer)"});
  const auto weight_texts = params.list(
      "layer_weights", {},
      {"weight of each layer's loss, in the order of layers; [] = all 1", "ours: layers weigh equally"});
  const std::int64_t in_channels = params.integer(
      "in_channels", 0,
      {"channels of the feature tap (one layer only); 0 = from the model",
       "ours: the model knows its taps' channels (psmt's DANNMethod requires the number)"},
      0);
  const std::string& path = params.path();
  if (!single.empty() && !names.empty()) throw MethodError(path + ".layers: give either layer or layers, not both");

  std::vector<AlignedLayer> layers;
  for (const auto& n : names.empty() ? std::vector<std::string>{single.empty() ? default_layer : single} : names) {
    for (const auto& seen : layers) {
      // Distinct submodule names keep checkpoints unambiguous.
      if (layer_module_name(seen.name) == layer_module_name(n)) {
        throw MethodError(path + ".layers: layer '" + n + "' given twice (or clashes with '" + seen.name + "')");
      }
    }
    layers.push_back(AlignedLayer{n, 1.0, 0});
  }
  if (!weight_texts.empty()) {
    if (weight_texts.size() != layers.size()) {
      throw MethodError(path + ".layer_weights: " + std::to_string(weight_texts.size()) + " weights for " +
                        std::to_string(layers.size()) + " layers");
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const std::string& text = weight_texts[i];
      errno = 0;
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (*end != '\0' || errno != 0 || !std::isfinite(v)) {
        throw MethodError(path + ".layer_weights[" + std::to_string(i) + "]: expected a number, got '" + text + "'");
      }
      if (v < 0) {
        throw MethodError(path + ".layer_weights[" + std::to_string(i) + "]: value " + text +
                          " is out of range, must be >= 0");
      }
      layers[i].weight = v;
    }
  }
  // One in_channels cannot describe layers of different widths.
  if (in_channels > 0 && layers.size() > 1) {
    throw MethodError(path + ".in_channels: only with a single layer; with several, channels come from the model");
  }
  for (auto& layer : layers) {
    layer.channels = in_channels;
    if (layer.channels == 0) {
      if (!model.channels) throw MethodError(path + ".in_channels: not given and the model cannot tell");
      layer.channels = model.channels(layer.name);
    }
  }
  return layers;
}

void LayerLossSum::add(const std::string& layer, double weight, const torch::Tensor& loss,
                       const torch::Tensor& accuracy) {
  const auto weighted = layers_ == 1 && weight == 1.0 ? loss : loss * weight;
  total_ = total_.defined() ? total_ + weighted : weighted;
  accuracy_sum_ = accuracy_sum_.defined() ? accuracy_sum_ + accuracy : accuracy;
  if (layers_ > 1) {
    per_layer_["domain_loss/" + layer] = loss;
    per_layer_["domain_acc/" + layer] = accuracy;
  }
}

std::map<std::string, LogValue> LayerLossSum::logs() const {
  auto logs = per_layer_;
  logs["domain_loss"] = total_;
  logs["domain_acc"] = layers_ == 1 ? accuracy_sum_ : accuracy_sum_ / static_cast<double>(layers_);
  return logs;
}

Dann::Dann(Params& params, const ModelInfo& model) {
  const auto layers = read_aligned_layers(params, model);
  const bool per_pixel =
      params.choice("discriminator", "pooled", {"pooled", "pixel"},
                    {"pooled: global average pool then an MLP, one logit per image; pixel: 1x1 convolutions, one "
                     "logit per feature-map position",
                     "Ganin et al. 2016 classify one feature vector per sample; psmt's DANNMethod pools the map "
                     "(AdaptiveAvgPool2d, Linear, ReLU, Linear)"}) == "pixel";
  const std::int64_t hidden = params.integer(
      "hidden_size", 1024,
      {"discriminator hidden width",
       "Ganin et al. 2016 (JMLR): 1024-unit domain classifier layers (x->1024->1024->2 for Office); "
       "Transfer-Learning-Library dann.py DomainDiscriminator(hidden_size=1024); psmt DANNMethod 1024"},
      1);
  lr_ = params.optional_number(
      "discriminator_lr",
      {"discriminator learning rate; unset = the optimizer's",
       "Ganin et al. 2016 and Transfer-Learning-Library dann.py train it with the network's optimizer and learning "
       "rate (psmt's DANNMethod defaults to 1e-4)"},
      Range::at_least(0.0));
  weight_decay_ = params.optional_number(
      "discriminator_weight_decay",
      {"discriminator weight decay; unset = the optimizer's",
       "Transfer-Learning-Library dann.py: the network's optimizer and weight decay"},
      Range::at_least(0.0));
  lambda_in_loss_ = params.flag(
      "lambda_in_loss", false,
      {"also multiply the loss by lambda (the encoder then sees lambda^2, the discriminator starts frozen)",
       "Ganin et al. 2016 and Transfer-Learning-Library put lambda in the gradient reversal only; psmt multiplies "
       "the loss too (true)"});
  for (const auto& layer : layers) {
    layers_.push_back(Layer{layer.name, layer.weight, DomainDiscriminator(layer.channels, hidden, per_pixel)});
  }
  if (layers_.size() == 1) {
    module_ = layers_.front().discriminator.ptr();  // the pre-multi-layer parameter names
  } else {
    module_ = std::make_shared<torch::nn::Module>("DannDiscriminators");
    for (auto& layer : layers_) module_->register_module(layer_module_name(layer.name), layer.discriminator.ptr());
  }
}

std::vector<std::string> Dann::feature_layers() const {
  std::vector<std::string> names;
  for (const auto& layer : layers_) names.push_back(layer.name);
  return names;
}

DaLossOutput Dann::compute_da_loss(const StepInputs& step) {
  LayerLossSum sum(layers_.size());
  for (auto& layer : layers_) {
    const auto& source = step.source_features.at(layer.name);
    const auto& target = step.target_features.at(layer.name);
    const auto source_logits = layer.discriminator(gradient_reversal(source, step.lambda));
    const auto target_logits = layer.discriminator(gradient_reversal(target, step.lambda));
    torch::Tensor accuracy;
    const auto loss = domain_loss(source_logits, target_logits, &accuracy);
    sum.add(layer.name, layer.weight, loss, accuracy);
  }
  DaLossOutput out;
  out.loss = lambda_in_loss_ ? sum.total() * step.lambda : sum.total();
  out.logs = sum.logs();
  out.logs["lambda"] = step.lambda;
  return out;
}

std::vector<ParamGroup> Dann::extra_parameter_groups() {
  // One group for every layer's discriminator: they share lr / weight decay.
  return {ParamGroup{"dann.discriminator", module_->parameters(), lr_, weight_decay_}};
}

DA_REGISTER_METHOD("dann", Dann);

}  // namespace da::methods
