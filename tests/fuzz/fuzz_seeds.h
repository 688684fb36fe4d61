// Seed inputs the fuzz targets' own code writes (the rest of each seed
// corpus comes from our archive writer, h5py and conf/: fuzz_seeds.cpp).
#pragma once

#include <string>

namespace da::fuzz {

// A checkpoint of the model fuzz_checkpoint restores into, after one step.
void write_checkpoint_seed(const std::string& path);

#ifdef DA_WITH_GDAL
// GeoTIFFs of the layouts fuzz_raster reads, written by GDAL into `out_dir`.
void write_raster_seeds(const std::string& out_dir);
#endif

}  // namespace da::fuzz
