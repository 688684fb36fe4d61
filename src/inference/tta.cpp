#include "inference/tta.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <utility>

namespace da::inference {
namespace {

// x -> rot90(flip_x(x), turns) on the window's (H, W) dimensions, and back.
struct Transform {
  bool flip = false;  // along W
  int turns = 0;      // quarter turns
};

at::Tensor apply(const at::Tensor& x, Transform t) {
  const at::Tensor flipped = t.flip ? x.flip({3}) : x;
  return t.turns == 0 ? flipped : at::rot90(flipped, t.turns, {2, 3});
}

at::Tensor invert(const at::Tensor& y, Transform t) {
  const at::Tensor turned = t.turns == 0 ? y : at::rot90(y, -t.turns, {2, 3});
  return t.flip ? turned.flip({3}) : turned;
}

std::vector<Transform> transforms_of(Tta tta) {
  switch (tta) {
    case Tta::kNone: return {{false, 0}};
    // A vertical flip is a horizontal one turned twice; both flips are two turns.
    case Tta::kFlips: return {{false, 0}, {true, 0}, {true, 2}, {false, 2}};
    case Tta::kD4: return {{false, 0}, {false, 1}, {false, 2}, {false, 3}, {true, 0}, {true, 1}, {true, 2}, {true, 3}};
  }
  return {};
}

}  // namespace

const std::vector<std::string>& tta_names() {
  static const std::vector<std::string> names = {"none", "flips", "d4"};
  return names;
}

Tta parse_tta(const std::string& name) {
  if (name == "none") return Tta::kNone;
  if (name == "flips") return Tta::kFlips;
  if (name == "d4") return Tta::kD4;
  throw std::invalid_argument("unknown test-time augmentation '" + name + "', valid ones are 'none', 'flips' or 'd4'");
}

WindowModel with_tta(WindowModel model, Tta tta) {
  if (tta == Tta::kNone) return model;
  return [model = std::move(model), transforms = transforms_of(tta)](const at::Tensor& windows) {
    at::Tensor sum;
    for (const Transform t : transforms) {
      const at::Tensor probability = at::softmax(invert(model(apply(windows, t).contiguous()), t), 1);
      sum = sum.defined() ? sum + probability : probability;
    }
    return at::log(sum / static_cast<double>(transforms.size())).contiguous();
  };
}

}  // namespace da::inference
