#include "inference/scene_split.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace da::inference {

std::vector<SceneShare> share_scenes(std::size_t scenes, int ranks) {
  if (ranks < 1) throw std::invalid_argument("share_scenes: need at least one rank, got " + std::to_string(ranks));
  const auto n = static_cast<std::size_t>(ranks);
  const std::size_t whole = scenes - scenes % n;
  std::vector<SceneShare> shares;
  for (std::size_t i = 0; i < scenes; ++i) shares.push_back({i, static_cast<int>(i % n), i >= whole});
  return shares;
}

std::vector<Strip> plan_strips(std::size_t window_rows, int ranks, std::size_t max_rows) {
  if (ranks < 1) throw std::invalid_argument("plan_strips: need at least one rank, got " + std::to_string(ranks));
  const auto n = static_cast<std::size_t>(ranks);
  const std::size_t most = std::max<std::size_t>(max_rows, 1);
  std::size_t count = (window_rows + most - 1) / most;  // strips small enough
  count = (count + n - 1) / n * n;                      // whole rounds
  count = std::min(count, window_rows);                 // not empty
  std::vector<Strip> strips;
  for (std::size_t i = 0; i < count; ++i) {
    strips.push_back({i * window_rows / count, (i + 1) * window_rows / count, static_cast<int>(i % n)});
  }
  return strips;
}

}  // namespace da::inference
