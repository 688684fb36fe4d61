// da_dist: entry point, and the one place that knows both the command line
// and the training loop. MPI comes up first; a runtime failure on any rank of
// a multi-rank job aborts every rank so that nobody waits in a collective.
#include <cstdio>
#include <exception>
#include <memory>

#include "cli/app.h"
#include "dist/bootstrap.h"
#include "trainer/train_command.h"

int main(int argc, char** argv) {
  std::unique_ptr<da::dist::Session> session;
  try {
    session = std::make_unique<da::dist::Session>(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "da_dist: error: cannot start the process group: %s\n", e.what());
    return 1;
  }
  const int status = da::cli::run_app(argc, argv, session->world(), da::trainer::run_training);
  if (status == 1 && session->world().size > 1) {
    da::dist::abort_job(1, "da_dist: rank " + std::to_string(session->world().rank) +
                               " failed; aborting all ranks");
  }
  return status;
}
