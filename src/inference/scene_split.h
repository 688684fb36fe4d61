// How `da_dist predict --scene` shares the work among the ranks of an mpirun.
//
// With S scenes and N ranks, the first S - S % N scenes are predicted whole,
// scene i by rank i % N: no communication and no repeated work. The S % N
// scenes left over (all of them when S < N) would leave ranks idle, so each
// of them is split across all ranks: its window rows are cut into strips,
// dealt to the ranks in turn (rounds of one strip per rank); every rank
// computes its strip's rows (bit-identical to a single-rank run, see
// predict_sliding_windows) and the scene's writer, rank i % N, writes them
// in order. Every output is written by exactly one rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace da::inference {

struct SceneShare {
  std::size_t scene = 0;  // index into the scenes
  int writer = 0;         // the rank that writes its outputs (and predicts it alone when not split)
  bool split = false;     // all ranks predict strips of it
};

// Every scene once, in the order the ranks take them: the whole ones first.
std::vector<SceneShare> share_scenes(std::size_t scenes, int ranks);

struct Strip {
  std::size_t begin = 0;  // window rows [begin, end)
  std::size_t end = 0;
  int rank = 0;  // the rank that computes it
};

// Window rows [0, window_rows) cut into consecutive strips of at most
// `max_rows` window rows (at least one), balanced, as many as a whole number
// of rounds of one strip per rank needs (fewer when there are fewer window
// rows than that); strip i goes to rank i % ranks, in round i / ranks.
std::vector<Strip> plan_strips(std::size_t window_rows, int ranks, std::size_t max_rows);

}  // namespace da::inference
