// Checks of option values for CLI11 (Option::check) whose messages keep our
// wording; CLI11 puts the option's name in front:
//   --batch-size: expected a positive integer, got '0'
//   --domain: unknown domain 'both', valid domains are 'source' or 'target'
// Numeric checks also guard CLI11's conversion, so a bad number is never
// CLI11's "Could not convert".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class Validator;
}

namespace da::command_line {

// A whole number >= min ("a positive integer" for 1, "a non-negative
// integer" for 0).
CLI::Validator integer_at_least(std::int64_t min);

// A whole number in [low, high].
CLI::Validator integer_in(std::int64_t low, std::int64_t high);

// A number (decimal or exponent form) in [low, high]; NaN is refused.
CLI::Validator number_in(double low, double high);

// One of `values`; `noun` names what they are ("level", "domain", "mode").
CLI::Validator one_of(const std::string& noun, const std::vector<std::string>& values);

}  // namespace da::command_line
