// Uses each gathered library once, with a value check, under mpirun:
// MPI all-reduce, a YAML parse, an HDF5 write and read back, a GeoTIFF
// written and read back by GDAL, spdlog and GoogleTest linked. Exit status 0
// and "deps_probe: ok" on rank 0 when all of them work.
#include <gdal_priv.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <string>

namespace {
int fail(const std::string& what) {
  std::fprintf(stderr, "deps_probe: %s failed\n", what.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int one = 1, sum = 0;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (sum != size) return fail("MPI_Allreduce");

  if (YAML::Load("a: {b: [1, 2, 3]}")["a"]["b"][2].as<int>() != 3) return fail("yaml-cpp");

  const std::string dir = argc > 1 ? argv[1] : "/tmp";
  const std::string h5 = dir + "/deps_probe_" + std::to_string(rank) + ".h5";
  int values[4] = {1, 2, 3, 4}, back[4] = {};
  hid_t file = H5Fcreate(h5.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[1] = {4};
  hid_t space = H5Screate_simple(1, dims, nullptr);
  hid_t dset = H5Dcreate2(file, "v", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
  H5Dread(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back);
  H5Dclose(dset);
  H5Sclose(space);
  H5Fclose(file);
  std::remove(h5.c_str());
  if (back[3] != 4) return fail("HDF5");

  GDALAllRegister();
  const std::string tif = dir + "/deps_probe_" + std::to_string(rank) + ".tif";
  GDALDriver* gtiff = GetGDALDriverManager()->GetDriverByName("GTiff");
  if (gtiff == nullptr) return fail("GDAL GTiff driver");
  GDALDataset* ds = gtiff->Create(tif.c_str(), 8, 8, 1, GDT_Byte, nullptr);
  std::uint8_t pixel = 42;
  if (ds == nullptr || ds->GetRasterBand(1)->RasterIO(GF_Write, 3, 3, 1, 1, &pixel, 1, 1, GDT_Byte, 0, 0) != CE_None)
    return fail("GDAL write");
  GDALClose(ds);
  ds = static_cast<GDALDataset*>(GDALOpen(tif.c_str(), GA_ReadOnly));
  pixel = 0;
  if (ds == nullptr || ds->GetRasterBand(1)->RasterIO(GF_Read, 3, 3, 1, 1, &pixel, 1, 1, GDT_Byte, 0, 0) != CE_None ||
      pixel != 42)
    return fail("GDAL read");
  GDALClose(ds);
  std::remove(tif.c_str());

  ::testing::InitGoogleTest(&argc, argv);
  if (rank == 0) spdlog::info("deps_probe: ok ({} ranks; MPI, yaml-cpp, HDF5, GDAL, spdlog, GoogleTest)", size);
  MPI_Finalize();
  return 0;
}
