// The layout of the JSON da_dist writes (metrics.jsonl, `da_dist evaluate
// --json`, export's metadata), around nlohmann-json, which does the escaping
// and the numbers (NaN and infinities as null; bytes that are not UTF-8
// replaced by U+FFFD, never an exception).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace da::log {

// One line, ", " and ": " between items: {"kind": "step", "epoch": 0}.
std::string json_line(const nlohmann::ordered_json& value);

// An object for people to read as well: one top-level key per line; an
// array of arrays or objects one element per line; everything else on the
// line of its key. Ends with a newline.
std::string json_document(const nlohmann::ordered_json& object);

}  // namespace da::log
