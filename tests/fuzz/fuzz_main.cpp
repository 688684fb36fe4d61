// libFuzzer's entry for one target, chosen at compile time (DA_FUZZ_TARGET,
// see CMakeLists.txt). A refusal is a good outcome; an unclear error or any
// other exception aborts, which libFuzzer reports and saves as a finding.
#include <cstdio>
#include <exception>

#include "fuzz_targets.h"
#include "io/hdf5_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  da::io::silence_hdf5_errors();  // HDF5 prints its error stack on every refused call otherwise
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    da::fuzz::DA_FUZZ_TARGET(data, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finding: %s\n", e.what());
    std::abort();
  }
  return 0;
}
