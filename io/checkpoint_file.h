// Checkpoint files: torch::serialize archives written atomically (a reader
// or a crash never sees half a checkpoint) and read with errors that name
// the file. What goes inside is the trainer's business.
#pragma once

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <string>

namespace da::io {

// Writes `archive` to `path` via a temporary file in the same directory,
// fsync'ed and renamed over `path`.
void save_checkpoint_file(torch::serialize::OutputArchive& archive, const std::string& path);

// Reads a checkpoint written by save_checkpoint_file, every tensor onto
// `device` whatever device it was saved from (a GPU run's checkpoint loads on
// a CPU-only machine; each rank's state lands on its own GPU). Throws
// std::runtime_error naming `path` when it is missing or unreadable.
void load_checkpoint_file(torch::serialize::InputArchive& archive, const std::string& path, c10::Device device);

}  // namespace da::io
