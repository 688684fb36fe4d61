// DANN (Ganin et al., 2016): a domain discriminator on one or more feature
// layers, trained through a gradient reversal layer so that the encoder
// learns features the discriminator cannot tell apart.
//
// Parameters: layer (default: the first of domain_adaptation.feature_layers,
// else "encoder") or layers (a list: one discriminator per layer) with
// layer_weights (default all 1; the loss is sum of weight * layer loss),
// discriminator (pooled | pixel), hidden_size (1024), in_channels (default:
// from the model; only with a single layer), discriminator_lr and
// discriminator_weight_decay (default: the optimizer's), lambda_in_loss
// (false; see lambda_schedule.h), loss_weight (read by the framework).
// Logs: domain_loss (the weighted sum), domain_acc (mean over layers),
// lambda; with several layers also domain_loss/<layer>, domain_acc/<layer>.
// Expects model.bn_mode joint or separate.
//
// module(): with one layer the discriminator itself (parameter names
// fc1.weight, ...: checkpoints from before multi-layer support still load);
// with several, one child per layer named after it with '.' -> '_'
// (encoder_layer3.fc1.weight, ...).
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "methods/domain_discriminator.h"
#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class Dann : public Method {
 public:
  Dann(Params& params, const ModelInfo& model);

  std::string name() const override { return "dann"; }
  std::vector<std::string> summary_logs() const override { return {"domain_acc"}; }
  std::vector<std::string> feature_layers() const override;
  DaLossOutput compute_da_loss(const StepInputs& step) override;
  std::shared_ptr<torch::nn::Module> module() override { return module_; }
  std::vector<ParamGroup> extra_parameter_groups() override;

 private:
  struct Layer {
    std::string name;
    double weight;
    DomainDiscriminator discriminator;
  };
  std::vector<Layer> layers_;
  bool lambda_in_loss_;
  std::optional<double> lr_;
  std::optional<double> weight_decay_;
  std::shared_ptr<torch::nn::Module> module_;
};

// Domain classification loss of discriminator logits: binary cross-entropy
// with source = 0 and target = 1, averaged over every logit of both
// domains; `accuracy` receives the fraction classified correctly.
torch::Tensor domain_loss(const torch::Tensor& source_logits, const torch::Tensor& target_logits,
                          torch::Tensor* accuracy);
// The same with per-logit weights over cat(source, target) (mean of
// weight * BCE, as F.binary_cross_entropy_with_logits(weight=...)); an
// undefined `weight` is the unweighted loss. Accuracy stays unweighted.
torch::Tensor domain_loss(const torch::Tensor& source_logits, const torch::Tensor& target_logits,
                          const torch::Tensor& weight, torch::Tensor* accuracy);

// ---- Shared by the adversarial methods that align several layers (dann, cdan).

struct AlignedLayer {
  std::string name;
  double weight = 1.0;
  std::int64_t channels = 0;
};

// Reads layer / layers / layer_weights / in_channels as documented above;
// errors name the YAML path.
std::vector<AlignedLayer> read_aligned_layers(Params& params, const ModelInfo& model);

// A layer's name as a submodule name (libtorch forbids '.' there).
std::string layer_module_name(const std::string& layer);

// Sums weight * per-layer domain loss and builds the logs: totals always,
// per-layer entries (domain_loss/<layer>, domain_acc/<layer>) only when
// there is more than one layer, so single-layer logs keep their old keys.
class LayerLossSum {
 public:
  explicit LayerLossSum(std::size_t layers) : layers_(layers) {}
  void add(const std::string& layer, double weight, const torch::Tensor& loss, const torch::Tensor& accuracy);
  const torch::Tensor& total() const { return total_; }
  // domain_loss = total, domain_acc = mean of the layers' accuracies.
  std::map<std::string, LogValue> logs() const;

 private:
  std::size_t layers_;
  torch::Tensor total_;
  torch::Tensor accuracy_sum_;
  std::map<std::string, LogValue> per_layer_;
};

}  // namespace da::methods
