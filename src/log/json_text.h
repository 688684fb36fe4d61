// The two pieces of JSON text da_dist writes by hand (metrics.jsonl,
// `da_dist evaluate --json`): quoted strings and numbers, with NaN/Inf as null.
#pragma once

#include <string>

namespace da::log {

// "text" with quotes, backslashes and control characters escaped.
std::string json_string(const std::string& text);

// `value` with `significant` digits (%.*g); null when not finite.
std::string json_number(double value, int significant = 17);

}  // namespace da::log
