// Every MPI call goes through DA_MPI_CHECK, which names the call and the rank
// when it fails. Only dist/ sources include this header (and mpi.h).
#pragma once

#include <mpi.h>

#include <string>

#include "dist/errors.h"

namespace da::dist::detail {

// Message for a failed MPI call: "MPI_Allreduce(...) failed on rank 1: <reason>".
std::string mpi_error_message(const char* call, int code);

}  // namespace da::dist::detail

#define DA_MPI_CHECK(call)                                                        \
  do {                                                                            \
    const int da_mpi_rc_ = (call);                                                \
    if (da_mpi_rc_ != MPI_SUCCESS) {                                              \
      throw ::da::dist::DistError(::da::dist::detail::mpi_error_message(#call, da_mpi_rc_)); \
    }                                                                             \
  } while (0)
