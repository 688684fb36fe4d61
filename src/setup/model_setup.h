// From the configuration and the archives to the segmentation model: bands
// and classes default from the archives (and must agree with them when
// given), optional initial weights.
#pragma once

#include "config/options.h"
#include "io/tile_archive.h"
#include "models/segmentation_model.h"

namespace da::setup {

// model.in_channels / model.classes, 0 meaning "from the archives". Throws
// config::ConfigError when the source and target archives disagree on their
// bands, or the config disagrees with the archives.
models::ModelSpec model_spec(const config::Config& config, const io::ArchiveInfo& source,
                             const io::ArchiveInfo& target);

// The model for `spec`, initialised from model.weights when set (strict per
// model.weights_strict; missing and unexpected keys are logged).
models::SegmentationModel build_model(const config::Config& config, const models::ModelSpec& spec);

}  // namespace da::setup
