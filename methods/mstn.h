// MSTN (Xie et al., "Learning Semantic Representations for Unsupervised
// Domain Adaptation", ICML 2018): DANN plus semantic centroid alignment.
//
// Centroids are per pixel, on one feature layer `centroid_layer` (default:
// the first DANN layer) at its own resolution: source pixels take the class
// of the source mask downsampled to the feature map by nearest neighbour
// (pixels labelled ignore_index, or any label outside [0, classes), are
// skipped); target pixels take the pseudo-label arg-max of the target logits,
// downsampled the same way. Per step, the per-class feature sums and pixel
// counts of both domains are summed over the ranks (differentiable: the
// backward sums the gradient over the ranks too), so the batch centroids
// C_batch = sum / count are those of the global batch whatever the number of
// ranks. The global centroids are exponential moving averages,
//   C = decay * C_old + (1 - decay) * C_batch   for classes present in the batch,
// a class's first batch initialising it (C = C_batch), absent classes keeping
// C_old; C_old carries no gradient. The centroid loss is the mean over the
// classes seen so far in both domains and over the channels of
// (C_s^k - C_t^k)^2, as the authors' code (tf.reduce_mean) computes it (the
// paper writes a sum over channels; on the demo that made the loss 512 times
// larger and MSTN fall below source-only); 0, in the graph, before any; and
//   loss = dann loss + centroid_weight * [lambda] * centroid loss,
// lambda (the scheduled coefficient) multiplying when scale_by_lambda (the
// paper's gamma = lambda). Centroids are updated at every compute_da_loss
// call, are identical on every rank (they come from all-reduced sums) and are
// method state (save_state / load_state: resume is exact).
//
// Parameters: every DANN parameter (dann.h: layer / layers, layer_weights,
// discriminator, hidden_size, in_channels, discriminator_lr,
// discriminator_weight_decay, lambda_in_loss), and centroid_layer (default:
// the first DANN layer), decay (0.7, in [0, 1)), centroid_weight (1, >= 0),
// scale_by_lambda (true). Logs: DANN's (domain_loss, domain_acc, lambda),
// centroid_loss (unweighted) and centroid_classes (classes in it).
// module() is DANN's (same parameter names); its parameter group is
// "mstn.discriminator".
#pragma once

#include <string>
#include <vector>

#include "methods/dann.h"
#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

class Mstn : public Method {
 public:
  Mstn(Params& params, const ModelInfo& model);

  std::string name() const override { return "mstn"; }
  std::vector<std::string> summary_logs() const override { return {"domain_acc"}; }
  std::vector<std::string> feature_layers() const override;
  DaLossOutput compute_da_loss(const StepInputs& step) override;
  std::shared_ptr<torch::nn::Module> module() override { return dann_.module(); }
  std::vector<ParamGroup> extra_parameter_groups() override;

  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

  // [2, classes, channels]: source (0) and target (1) moving centroids, and
  // [2, classes] whether each has been seen (1) or not (0).
  const torch::Tensor& centroids() const { return centroids_; }
  const torch::Tensor& seen() const { return seen_; }

 private:
  Dann dann_;
  std::string layer_;
  std::int64_t classes_;
  double decay_;
  double centroid_weight_;
  bool scale_by_lambda_;
  torch::Tensor centroids_;
  torch::Tensor seen_;
};

// Per-class sums of features [B,C,h,w] over the pixels of each class in
// labels [B,H,W] (nearest-neighbour downsampled to h x w when the sizes
// differ), and the pixel counts: [classes, C + 1], counts in the last column.
// Labels outside [0, classes) are skipped.
torch::Tensor class_feature_sums(const torch::Tensor& features, const torch::Tensor& labels, std::int64_t classes);

}  // namespace da::methods
