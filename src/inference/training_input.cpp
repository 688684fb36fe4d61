#include "inference/training_input.h"

#include <optional>
#include <stdexcept>

#include "io/archive_set.h"
#include "setup/loader_setup.h"

namespace da::inference {

TrainingInput training_input(const CheckpointModel& model, models::Domain domain) {
  const auto& target_train = model.config.data.target.train;
  TrainingInput input;
  input.archives =
      domain == models::Domain::kTarget && !target_train.empty() ? target_train : model.config.data.source.train;
  std::optional<io::ArchiveSet> training;
  try {
    training.emplace(input.archives);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        "the normalisation comes from the training archives named in the checkpoint, which cannot be opened: " +
        std::string(e.what()));
  }
  input.info = training->info();
  const io::LoaderOptions loader = setup::loader_options(model.config.data, model.config.run.seed,
                                                           setup::LoaderRole::kValidation, false, 0, 1);
  input.normalization = io::resolve_normalization(loader.normalization, *training);
  return input;
}

}  // namespace da::inference
