// The training recipes (see recipes.h).
#include "train/run/recipes.h"

namespace sm {

nlohmann::json recipe_lumbar_synthetic_small() {
  return nlohmann::json::parse(R"({
    "schema": "lumbar-lateral", "preset": "small",
    "data": {"val_images_max": 150},
    "seed": 1, "threads": 2,
    "stages": {
      "detect": {"minutes": 4.0, "batch": 16, "lr": 0.002, "warmup_steps": 30, "validations": 8},
      "coarse": {"minutes": 4.5, "batch": 16, "lr": 0.002, "warmup_steps": 30, "validations": 8},
      "refine": {"minutes": 4.0, "batch": 32, "lr": 0.002, "warmup_steps": 30, "validations": 8}
    },
    "augment": {"rotate_deg": 12, "flip_prob": 0.5, "crop_prob": 0.3}
  })");
}

}  // namespace sm
