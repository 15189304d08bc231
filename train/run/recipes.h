// The training recipes written once: the demo trains with them and configs/*.json carry the same
// values (tests/test_training.cpp compares each config file with its recipe, so they cannot drift).
#pragma once
#include <nlohmann/json.hpp>

namespace sm {

// The small preset's recipe for synthetic lateral lumbar films (`spinemark demo`,
// configs/lumbar_synthetic_small.json; docs/training.md explains each value): a run config
// without the data paths (data.train, data.val), which each use adds.
nlohmann::json recipe_lumbar_synthetic_small();

}  // namespace sm
