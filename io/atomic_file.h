// Writing files so that a reader (or a crash) never sees half of one.
#pragma once

#include <functional>
#include <string>

namespace da::io {

// Writes `contents` to `path` atomically: a temporary file in the same
// directory, flushed and fsync'ed, then renamed over `path`.
void write_file_atomically(const std::string& path, const std::string& contents);

// Same, for writers that produce the file themselves (e.g. torch::save):
// `write` is called with the temporary path, which is then fsync'ed and
// renamed over `path`. The temporary file is removed if `write` throws.
void write_atomically_with(const std::string& path, const std::function<void(const std::string&)>& write);

// The two halves of the above, for writers that fill a file over time (the
// tile archive writer): the temporary name next to `path`, and the fsync +
// rename + directory sync that publishes it under `path`.
std::string temporary_path_for(const std::string& path);
void publish_temporary(const std::string& temporary, const std::string& path);

}  // namespace da::io
