// Training samples from a spine dataset for the loader: read the image, letterbox it to the
// network input (never stretch, method.md §5), augment at input resolution (landmarks move with
// the image), standardise intensities per image, and express the landmarks as DSNT targets
// normalised to (-1, 1) over the input. A pure function of (seed, epoch, index).
#pragma once
#include <memory>
#include <vector>

#include "models/geometry/schema.h"
#include "train/data/augment.h"
#include "train/data/dataset.h"
#include "train/data/loader.h"

namespace sm {

struct SpineSampleConfig {
  int input_width = 256, input_height = 512;  // network input (letterbox target)
  bool augment = true;                         // training: on; validation: off
  AugmentOptions augment_options;
  uint64_t seed = 0;
  bool cache_images = true;  // keep letterboxed images in memory after the first read
  // Detection targets: one point per vertebra (its centre, method.md §5) instead of every
  // landmark; a centre is visible when all of the vertebra's corners are.
  bool vertebra_centres = false;
};

// The sample function over `entries` (all of one schema). Thread-safe.
SampleFn spine_sample_fn(std::vector<DatasetEntry> entries, const Schema& schema, const SpineSampleConfig& config);

// Loader shape for such samples: 1 channel, the input size, the schema's landmark count (or
// vertebra count with vertebra_centres).
LoaderConfig spine_loader_config(const SpineSampleConfig& config, const Schema& schema, uint64_t size, int batch);

}  // namespace sm
