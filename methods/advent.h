// ADVENT's adversarial variant (Vu et al., "ADVENT: Adversarial Entropy
// Minimization for Domain Adaptation in Semantic Segmentation", CVPR 2019):
// a fully-convolutional discriminator tells source from target by their
// weighted self-information maps I = -p * log(p) / log(K) (per class, [B,K,H,W]),
// and the segmentation network learns to make the target's maps look like
// the source's. The direct variant is the `entropy` method.
//
// One step is the authors' (valeoai/ADVENT train_UDA.py) in one backward:
// the discriminator learns to tell the detached maps apart (source 0,
// target 1: domain_loss), and the segmentation network learns to pass its
// target maps off as source ones to the discriminator as it is, frozen for
// that forward (adversarial_loss, binary cross-entropy against label 0: the
// non-saturating GAN loss; times lambda, the scheduled coefficient). The
// method's loss is lambda * adversarial_loss + domain_loss; each network
// takes the gradient of its own term only. (A gradient reversal on both
// domains' maps, this method's former form, also lets the network win by
// making its source maps uncertain, and its saturating loss fades once the
// discriminator is sure: on the sanity problem it did not help at all.)
//
// Parameters: ndf (64: channels of the first of the discriminator's five
// 4x4 stride-2 convolutions, doubling up to 8*ndf, LeakyReLU 0.2 as in the
// paper), discriminator_lr and discriminator_weight_decay (default: the
// optimizer's). Logs: domain_loss, domain_acc, adversarial_loss.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <vector>

#include "methods/method.h"
#include "methods/params.h"

namespace da::methods {

// Weighted self-information -p * log(p) / log(K) of logits [B,K,H,W]
// (log-softmax, so no epsilon; K >= 2).
torch::Tensor self_information(const torch::Tensor& logits);

// The paper's discriminator: 4x4 convolutions with stride 2 and padding 1,
// K -> ndf -> 2ndf -> 4ndf -> 8ndf -> 1, LeakyReLU(0.2) between them.
// Returns its logits flattened.
class EntropyMapDiscriminatorImpl : public torch::nn::Module {
 public:
  EntropyMapDiscriminatorImpl(std::int64_t classes, std::int64_t ndf);
  torch::Tensor forward(const torch::Tensor& maps);

 private:
  std::vector<torch::nn::Conv2d> convs_;
};
TORCH_MODULE(EntropyMapDiscriminator);

class AdventAdversarial : public Method {
 public:
  AdventAdversarial(Params& params, const ModelInfo& model);

  std::string name() const override { return "advent_adversarial"; }
  std::vector<std::string> summary_logs() const override { return {"domain_acc"}; }
  DaLossOutput compute_da_loss(const StepInputs& step) override;
  std::shared_ptr<torch::nn::Module> module() override { return discriminator_.ptr(); }
  std::vector<ParamGroup> extra_parameter_groups() override;

 private:
  std::optional<double> lr_;
  std::optional<double> weight_decay_;
  EntropyMapDiscriminator discriminator_{nullptr};
};

}  // namespace da::methods
