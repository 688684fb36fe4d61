# Helpers that give every library, tool and test the same shape.

# One precompiled Torch header, built once and reused by every Torch target.
add_library(da_torch_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(da_torch_pch PUBLIC torch)
target_precompile_headers(da_torch_pch PRIVATE ${CMAKE_CURRENT_LIST_DIR}/torch_pch.h)

# da_use_torch(<target>): link Torch and reuse the shared precompiled header.
# The header is compiled with -fPIC (for the shared libraries); executables
# would get -fPIE, which makes GCC reject the header, so they compile with
# -fPIC too (the executable still links as PIE by the toolchain's default).
function(da_use_torch target)
  target_link_libraries(${target} PUBLIC torch)
  target_precompile_headers(${target} REUSE_FROM da_torch_pch)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()

# da_add_library(<name> ALIAS <da_dist::x> SOURCES ... [TORCH]
#                DEPS ... PRIVATE_DEPS ...)
# A shared library (shared so that a plug-in method loaded at run time sees
# the same method registry as the executable) whose headers are included as "<folder>/<file>.h" from the
# repository root (and installed the same way under include/da_dist).
function(da_add_library name)
  cmake_parse_arguments(A "TORCH" "ALIAS" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} SHARED ${A_SOURCES})
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/da_dist>)
  target_link_libraries(${name} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  if(A_TORCH)
    da_use_torch(${name})
  endif()
  if(A_ALIAS)
    add_library(${A_ALIAS} ALIAS ${name})
  endif()
  set_property(GLOBAL APPEND PROPERTY DA_INSTALLED_LIBRARIES ${name})
endfunction()

# Environment every test gets: Open MPI refuses root without these, and more
# ranks than cores need oversubscription. Harmless for non-root users. CUDA
# is hidden, so the suite means the same on a GPU machine (the cuda label's
# tests, tests/cuda, see the GPUs).
set(DA_TEST_ENV
  "CUDA_VISIBLE_DEVICES="
  "OMPI_ALLOW_RUN_AS_ROOT=1"
  "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  "OMPI_MCA_rmaps_base_oversubscribe=1"
  "OMP_NUM_THREADS=1")

# da_add_test_binary(<name> SOURCES ... LIBS ... [MPI_MAIN])
# One GoogleTest binary per area. MPI_MAIN links tests/support's main that
# initialises MPI and fails every rank when any rank fails.
function(da_add_test_binary name)
  cmake_parse_arguments(A "MPI_MAIN;TORCH" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  if(A_MPI_MAIN)
    target_link_libraries(${name} PRIVATE da_test_mpi_main)
  else()
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()
  target_link_libraries(${name} PRIVATE da_test_support GTest::gtest ${A_LIBS})
  if(A_TORCH)
    da_use_torch(${name})
  endif()
endfunction()

# da_add_unit_tests(<binary> LABELS ... [TIMEOUT s]): every TEST in the binary
# becomes its own ctest entry (discovered when ctest runs, not at build).
function(da_add_unit_tests binary)
  cmake_parse_arguments(A "" "TIMEOUT" "LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 120)
  endif()
  math(EXPR A_TIMEOUT "${A_TIMEOUT} * ${DA_TEST_TIMEOUT_SCALE}")
  # DISCOVERY_TIMEOUT: listing the tests starts Torch, which under ASan with
  # slow unwinding (tools/sanitize.sh) takes 5 s, CMake's default limit.
  gtest_discover_tests(${binary}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT} ENVIRONMENT "CUDA_VISIBLE_DEVICES=")
endfunction()

# da_add_mpi_test(<name> BINARY <bin> NP <n> [ARGS ...] [LABELS ...] [TIMEOUT s])
# Runs the binary under mpirun; a failure on any rank fails the entry (each
# rank exits non-zero, and mpirun reports the first non-zero exit), and a
# hang is killed by the ctest timeout.
function(da_add_mpi_test name)
  cmake_parse_arguments(A "" "BINARY;NP;TIMEOUT" "ARGS;LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 180)
  endif()
  math(EXPR A_TIMEOUT "${A_TIMEOUT} * ${DA_TEST_TIMEOUT_SCALE}")
  add_test(NAME ${name}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${A_NP} --oversubscribe
            ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${A_BINARY}> ${MPIEXEC_POSTFLAGS} ${A_ARGS})
  set_tests_properties(${name} PROPERTIES
    LABELS "mpi;${A_LABELS}" TIMEOUT ${A_TIMEOUT} ENVIRONMENT "${DA_TEST_ENV}"
    PROCESSORS ${A_NP})
endfunction()
