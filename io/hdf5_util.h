// Small facts about HDF5 objects that the archive reader and writer share:
// the library's last error, dataset shapes and readable type names.
#pragma once

#include <hdf5.h>

#include <string>
#include <vector>

namespace da::io {

// Turns off HDF5's printing of its error stack to stderr; our exceptions
// carry the one line that matters instead (see hdf5_error_detail).
void silence_hdf5_errors();

// The innermost message of the current thread's HDF5 error stack (the
// original cause, e.g. "truncated file: eof = 100, ..."), or "" when empty.
// Clears the stack.
std::string hdf5_error_detail();

// " (HDF5: <detail>)" or "" when HDF5 recorded no error, for appending to a message.
std::string hdf5_error_suffix();

// Extents of a dataset's dataspace (empty for a scalar).
std::vector<hsize_t> dataset_shape(hid_t dataset);

// "[2, 4, 64, 64]".
std::string shape_to_string(const std::vector<hsize_t>& shape);

// Numpy-like name of an HDF5 type: "uint8", "int32", "float64", "string",
// or the type class ("compound", "enum", ...).
std::string describe_type(hid_t type);

bool is_unsigned_integer(hid_t type, size_t bytes);
bool is_float(hid_t type, size_t bytes);

}  // namespace da::io
