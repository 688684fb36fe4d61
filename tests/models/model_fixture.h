// Shared by the model tests (weights, domain-specific BatchNorm, AdaBN): the
// tiny U-Net's specs with plain and with domain-specific BatchNorm, a
// model's state as a state dict, copying parameters and buffers by name,
// and BatchNorm layers given non-trivial parameters and statistics.
#pragma once

#include <torch/nn/module.h>

#include <string>

#include "models/model_spec.h"
#include "models/weights.h"

namespace da::test {

inline const models::ModelSpec kTinyPlain{"tiny", 3, 2};
inline const models::ModelSpec kTinyDsbn{"tiny", 3, 2, /*domain_specific_bn=*/true};

// Every parameter and buffer of `model` by name, detached copies.
models::StateDict state_of(torch::nn::Module& model);

// Whether `name` is a parameter or buffer of a DSBN layer's target branch.
bool is_target_key(const std::string& name);

// Copies every parameter and buffer of `from` into the same-named entry of `to` (which must have it).
void copy_by_name(torch::nn::Module& from, torch::nn::Module& to);

// Gives every BN of `model` (both branches) non-trivial affine parameters and running stats.
void randomise_bns(torch::nn::Module& model);

}  // namespace da::test
