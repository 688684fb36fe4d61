// Precompiled header shared by every target that uses Torch (see
// tools/cmake/DaTargets.cmake). Parsing these headers costs ~35 s on a 2-core
// machine; precompiling them once brings a Torch translation unit from
// ~15 s to ~5 s. Sources still include the narrow headers they need.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/functional.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>
