// A walk over a Python pickle's opcodes that checks every length it
// declares (strings, bytes, long integers, frames) against the bytes left,
// and every memo index against the entries stored so far. Torch's
// unpickler allocates a declared length before reading it and grows its
// memo to any index it is given, so a damaged checkpoint can make it
// reserve tens of gigabytes; the checkpoint reader runs this first
// (io/checkpoint_file.cpp) and refuses such a file instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace da::io {

// "" when every declared length and memo index fits; otherwise what does
// not, with its offset ("a string of 4294967040 bytes at offset 812, 37
// bytes left", "memo index 1840000000 at offset 90, 12 entries stored").
// Stops at STOP or at an opcode it does not know (the unpickler reports those).
std::string pickle_length_problem(const uint8_t* data, size_t size);

}  // namespace da::io
