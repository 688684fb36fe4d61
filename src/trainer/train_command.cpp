#include "trainer/train_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "config/loader.h"
#include "dist/bootstrap.h"
#include "dist/communicator.h"
#include "log/logging.h"
#include "run/run_directory.h"
#include "setup/elastic_resume.h"
#include "setup/device_setup.h"
#include "trainer/trainer.h"

namespace da::trainer {

int run_training(const config::Config& configured, const std::string& resume, const dist::WorldInfo& world) {
  log::init(world.rank, configured.logging.level);
  config::Config config = configured;
  if (world.rank == 0) run::prepare_run_directory(config);
  dist::barrier();  // the directory exists before any rank opens its log file
  log::add_run_file(run::run_directory(config), world.rank);
  spdlog::info("da_dist {} ranks, run directory {}", world.size, run::run_directory(config));
  // Which machine each rank is on, for the messages of a job that lost one.
  spdlog::info("rank {} of {} on host {} (pid {})", world.rank, world.size, dist::this_host(),
               static_cast<long>(getpid()));
  // A checkpoint of another rank count resumes with its global batch (setup/elastic_resume.h).
  const std::string checkpoint = setup::resume_checkpoint_path(resume, run::run_directory(config));
  if (!checkpoint.empty()) {
    const setup::ElasticBatch elastic = setup::elastic_batch(setup::read_checkpoint_geometry(checkpoint), world.size,
                                                             config.data.batch_size, checkpoint);
    config.data.batch_size = elastic.batch_size;
    if (!elastic.note.empty()) spdlog::warn("{}", elastic.note);
  }
  const bool cuda = setup::uses_cuda(config.run);
  const auto comm = dist::make_communicator({config.dist.backend, config.dist.timeout_s, cuda});
  // With the model on a GPU, the per-step host values (stop flag, logged
  // means) go over MPI, so they never wait for the GPU's stream.
  const auto control = cuda ? dist::make_communicator({"auto", config.dist.timeout_s, false}) : nullptr;
  Trainer trainer(config, config::to_yaml(config), *comm, world, run::run_directory(config), control.get());
  const int status = trainer.fit(resume);
  log::flush();
  return status;
}

}  // namespace da::trainer
