// Facts about the HDF5 library da_dist runs against.
#pragma once

#include <string>

namespace da::io {

// "1.10.8" (the library linked at run time, not the headers).
std::string hdf5_version();

}  // namespace da::io
