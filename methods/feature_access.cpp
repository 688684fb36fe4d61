#include "methods/feature_access.h"

#include <stdexcept>

namespace da::methods {

std::string default_feature_layer(const ModelInfo& model) {
  return model.feature_layers.empty() ? "encoder" : model.feature_layers.front();
}

std::string read_feature_layer(Params& params, const ModelInfo& model) {
  return params.text("layer", default_feature_layer(model),
                     {"feature tap whose features (pooled per image) the method uses; default: the first of "
                      "domain_adaptation.feature_layers, else encoder",
                      "ours: a segmentation net has no single feature vector (the papers use the classifier's last "
                      "features)"});
}

torch::Tensor pooled_features(const FeatureMap& features, const std::string& layer, const std::string& domain,
                              const std::string& method) {
  const auto it = features.find(layer);
  if (it == features.end()) {
    throw std::invalid_argument(method + ": feature layer '" + layer + "' is missing from the " + domain + " features");
  }
  const auto& f = it->second;
  if (f.dim() < 2) {
    throw std::invalid_argument(method + ": " + domain + " features of '" + layer + "' must be [B,C,...], got " +
                                std::to_string(f.dim()) + " dimension(s)");
  }
  return f.dim() == 2 ? f : f.flatten(2).mean(2);
}

}  // namespace da::methods
