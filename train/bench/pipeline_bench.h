// `spinemark bench --model pipeline` (issue 10): the 2-step inference timed per image on one
// synthetic 16-bit film, with the time of each stage (detect: letterbox + network + decoding;
// coarse: the same; refine: crops from the full-resolution film, the refinement passes and the
// back-mapping), for the model's default inference (refine_passes × refine_variants) and for the
// plain single pass of the paper. The networks carry seeded random weights: the timings do not
// depend on the weights' values, and no data or trained model is needed.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "tensor/tensor.h"

namespace sm {

struct PipelineBenchConfig {
  std::string preset = "small";          // model_spec_preset
  std::string schema = "lumbar-lateral";
  int film_width = 2000, film_height = 1000;  // W × H of the 16-bit film
  int reps = 10, warmup = 2;
  Device device = Device::CPU;
};

// One JSON record per inference mode: {"bench": "pipeline", "model": "pipeline" or
// "pipeline_1pass", "median_s", "stages_median_ms": {...}, ...}.
std::vector<nlohmann::json> pipeline_bench(const PipelineBenchConfig& c);

}  // namespace sm
