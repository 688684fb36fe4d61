// "Did you mean ...?" for unknown keys and enum values.
#pragma once

#include <string>
#include <vector>

namespace da::config {

// Levenshtein distance between two strings (case-sensitive).
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word`, or "" when none is close enough to be a
// plausible typo (distance above max(2, |word|/2)).
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// "'a', 'b' or 'c'" for error messages.
std::string quoted_list(const std::vector<std::string>& items);

}  // namespace da::config
