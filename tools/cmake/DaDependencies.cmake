# Every external dependency of da_dist, found with find_package: Debian
# packages and the project venv's pip torch, both installed by tools/setup.sh
# (which passes CMAKE_PREFIX_PATH=torch.utils.cmake_prefix_path). Nothing is
# vendored or downloaded at build time.

find_package(Torch REQUIRED)
# The Python interpreter whose torch gives the tests their reference values
# and runs the Python peers: the same Torch as the build.
set(DA_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python with torch, torchvision and h5py (tools/setup.sh's venv)")
# pip's Torch lives outside the system's library path: installed binaries
# carry its directory (the build tree's binaries get it from CMake anyway).
get_filename_component(_da_torch_libdir "${TORCH_LIBRARY}" DIRECTORY)
list(APPEND CMAKE_INSTALL_RPATH "${_da_torch_libdir}")
find_package(MPI REQUIRED COMPONENTS C)
# We use the C API only; keep mpi.h from dragging in the C++ bindings.
set_property(TARGET MPI::MPI_C APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)
find_package(yaml-cpp REQUIRED)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(spdlog REQUIRED)
# Torch's wheel ships its own fmt (12) inside the include directory that
# every Torch target puts ahead of /usr/include; Debian's spdlog is built
# against Debian's fmt (libfmt-dev, 9) and does not compile against fmt 12.
# So our sources see the fmt that spdlog was built with first, through a
# directory holding only a link to it. (The Torch headers we include use no
# fmt.)
get_target_property(_da_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
find_path(DA_FMT_INCLUDE_DIR fmt/core.h HINTS ${_da_fmt_inc} NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
set(_da_fmt_first "${PROJECT_BINARY_DIR}/spdlog-fmt")
file(MAKE_DIRECTORY "${_da_fmt_first}")
file(CREATE_LINK "${DA_FMT_INCLUDE_DIR}/fmt" "${_da_fmt_first}/fmt" SYMBOLIC)
include_directories(SYSTEM BEFORE "${_da_fmt_first}")
find_package(Threads REQUIRED)
# Header-only, used privately: the command lines (CLI11) and JSON written
# by the CLI, the logs and the exports (nlohmann-json).
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
if(DA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# libdeflate (Debian's libdeflate-dev) decodes the deflate chunks the loader
# reads directly (io/direct_chunk_reader.h); it ships no CMake config.
find_path(DA_LIBDEFLATE_INCLUDE_DIR libdeflate.h REQUIRED)
find_library(DA_LIBDEFLATE_LIBRARY deflate REQUIRED)
if(NOT TARGET da::libdeflate)
  add_library(da::libdeflate INTERFACE IMPORTED)
  set_target_properties(da::libdeflate PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${DA_LIBDEFLATE_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${DA_LIBDEFLATE_LIBRARY}")
endif()

# HDF5 has no imported target in CMake 3.25's FindHDF5 for every layout:
# wrap it once so the rest of the build links `da::hdf5`.
if(NOT TARGET da::hdf5)
  add_library(da::hdf5 INTERFACE IMPORTED)
  set_target_properties(da::hdf5 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${HDF5_C_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${HDF5_C_LIBRARIES}"
    INTERFACE_COMPILE_DEFINITIONS "${HDF5_C_DEFINITIONS}")
endif()

# Torch's headers are third-party: mark them SYSTEM so -Wall -Wextra only
# speaks about our code.
get_target_property(_da_torch_inc torch INTERFACE_INCLUDE_DIRECTORIES)
set_target_properties(torch PROPERTIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_da_torch_inc}")

# --- Torch flavour ----------------------------------------------------------
if(CAFFE2_USE_CUDA OR TORCH_CUDA_LIBRARIES)
  set(DA_TORCH_HAS_CUDA ON)
else()
  set(DA_TORCH_HAS_CUDA OFF)
endif()

# --- NCCL -------------------------------------------------------------------
# The NCCL communicator itself needs only nccl.h, libnccl and the CUDA
# runtime; the glue to Torch's CUDA streams additionally needs a CUDA Torch.
set(_da_nccl_hints ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME} $ENV{CUDA_HOME} /usr/local/cuda)
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_da_nccl_hints} PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${_da_nccl_hints} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
find_package(CUDAToolkit QUIET)

set(DA_NCCL_HEADERS_FOUND OFF)
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND CUDAToolkit_FOUND)
  set(DA_NCCL_HEADERS_FOUND ON)
endif()

string(TOUPPER "${DA_WITH_NCCL}" _da_nccl_mode)
if(NOT _da_nccl_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "DA_WITH_NCCL must be AUTO, ON or OFF (got '${DA_WITH_NCCL}')")
endif()

set(_da_nccl_missing "")
if(NOT DA_TORCH_HAS_CUDA)
  list(APPEND _da_nccl_missing "a CUDA build of Torch (found CPU-only Torch at ${Torch_DIR})")
endif()
if(NOT NCCL_INCLUDE_DIR)
  list(APPEND _da_nccl_missing "nccl.h (set NCCL_ROOT)")
endif()
if(NOT NCCL_LIBRARY)
  list(APPEND _da_nccl_missing "libnccl (set NCCL_ROOT)")
endif()
if(NOT CUDAToolkit_FOUND)
  list(APPEND _da_nccl_missing "the CUDA runtime (CUDAToolkit)")
endif()

if(_da_nccl_mode STREQUAL "OFF")
  set(DA_NCCL_ENABLED OFF)
elseif(_da_nccl_missing)
  if(_da_nccl_mode STREQUAL "ON")
    string(REPLACE ";" ", " _da_msg "${_da_nccl_missing}")
    message(FATAL_ERROR "DA_WITH_NCCL=ON but these are missing: ${_da_msg}")
  endif()
  set(DA_NCCL_ENABLED OFF)
else()
  set(DA_NCCL_ENABLED ON)
endif()

if(DA_NCCL_ENABLED)
  get_filename_component(_da_nccl_libdir "${NCCL_LIBRARY}" DIRECTORY)
  list(APPEND CMAKE_INSTALL_RPATH "${_da_nccl_libdir}")
  add_library(da::nccl INTERFACE IMPORTED)
  set_target_properties(da::nccl PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${NCCL_LIBRARY};CUDA::cudart")
endif()

message(STATUS "da_dist: Torch ${Torch_VERSION} (CUDA: ${DA_TORCH_HAS_CUDA}), "
               "MPI ${MPI_C_VERSION}, HDF5 ${HDF5_VERSION}, NCCL: ${DA_NCCL_ENABLED}")
