// Reading and writing the attributes of the tile archive format, accepting
// every encoding other writers use: strings fixed- or variable-length, ASCII
// or UTF-8 (h5py writes variable-length UTF-8), scalar or 1-D; integers of
// any width and sign. Errors name the file and the attribute.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace da::io {

bool has_attribute(hid_t object, const char* name);

// All elements of the attribute, a scalar giving one element. `file` names
// the file in error messages.
std::vector<std::string> read_string_attribute(const std::string& file, hid_t object, const char* name);
std::vector<int64_t> read_int_attribute(const std::string& file, hid_t object, const char* name);
// Accepts integer or floating-point attributes, converted to double.
std::vector<double> read_float_attribute(const std::string& file, hid_t object, const char* name);

// Writers use h5py's own encodings: variable-length UTF-8 strings, int64,
// float64, so that h5py users read back plain `str`, `int` and arrays.
void write_string_attribute(const std::string& file, hid_t object, const char* name, const std::string& value);
void write_string_list_attribute(const std::string& file, hid_t object, const char* name,
                                 const std::vector<std::string>& values);
void write_int_attribute(const std::string& file, hid_t object, const char* name, int64_t value);
void write_float_list_attribute(const std::string& file, hid_t object, const char* name,
                                const std::vector<double>& values);

}  // namespace da::io
