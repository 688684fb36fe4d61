// Test-time augmentation for the sliding window: each window batch is run
// through the model once per transform of the square window (flips, rot90),
// every output is mapped back by the inverse transform, and the softmax
// probabilities are averaged. The wrapped model returns the log of that mean
// probability, so the sliding window blends log-probabilities: a pixel that
// one window covers gets exactly the window's mean probability back from a
// softmax, and where windows overlap the blend is a weighted geometric mean
// of their mean probabilities (renormalised by the softmax).
#pragma once

#include <string>
#include <vector>

#include "inference/sliding_window.h"

namespace da::inference {

enum class Tta {
  kNone,   // the model alone
  kFlips,  // identity, horizontal, vertical and both flips (4 passes)
  kD4,     // the 8 symmetries of the square: rot90 x {0, 1, 2, 3} with and without a flip
};

// "none", "flips", "d4": the names parse_tta takes.
const std::vector<std::string>& tta_names();

// Throws std::invalid_argument naming the valid names for another one.
Tta parse_tta(const std::string& name);

// `model` averaged over the transforms of `tta` as above; `model` itself
// (logits untouched) for Tta::kNone.
WindowModel with_tta(WindowModel model, Tta tta);

}  // namespace da::inference
