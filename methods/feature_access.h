// Feature taps as the single-layer methods (bsp, mmd, coral, dann's layer)
// read them: the default layer, and one layer's features of a domain
// global-average-pooled to [B,C].
#pragma once

#include <string>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

// The default of a method's `layer` parameter: the first of
// domain_adaptation.feature_layers, else "encoder".
std::string default_feature_layer(const ModelInfo& model);

// The `layer` parameter of the single-layer methods (mmd, coral, bsp).
std::string read_feature_layer(Params& params, const ModelInfo& model);

// features[layer] [B,C,...] averaged over its spatial dimensions to [B,C]
// ([B,C] is returned as is). A missing layer or fewer than 2 dimensions throw
// std::invalid_argument starting with "<method>: " and naming the layer and
// the domain ("source" or "target").
torch::Tensor pooled_features(const FeatureMap& features, const std::string& layer, const std::string& domain,
                              const std::string& method);

}  // namespace da::methods
