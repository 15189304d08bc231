// The whole-pipeline benchmark (see pipeline_bench.h).
#include "train/bench/pipeline_bench.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "models/geometry/schema.h"
#include "models/nets/spine_model.h"
#include "models/pipeline/pipeline.h"
#include "tensor/device_backend.h"
#include "tensor/rng.h"

namespace sm {

namespace {

double median(std::vector<double> v) {
  SM_CHECK(!v.empty(), "pipeline bench: no timed repetition");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A 16-bit film with some structure (a bright column and noise), so that the letterbox and the
// crops read real values; what the random networks make of it does not matter for the timing.
Image bench_film(int width, int height) {
  Image film(width, height);
  film.bits = 16;
  film.format = "synthetic";
  Rng rng(7);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double column = std::exp(-std::pow((x - 0.5 * width) / (0.15 * width), 2.0));
      film.at(x, y) = float(8000.0 + 30000.0 * column + 2000.0 * rng.uniform());
    }
  return film;
}

nlohmann::json time_mode(const Pipeline& pipeline, const Image& film, const PipelineBenchConfig& c, const char* name) {
  for (int i = 0; i < c.warmup; ++i) pipeline.run(film);
  std::map<std::string, std::vector<double>> stages;
  for (int i = 0; i < c.reps; ++i) {
    const PipelineResult r = pipeline.run(film);
    for (const auto& [stage, ms] : r.timings_ms) stages[stage].push_back(ms);
  }
  device_backend().synchronize();
  nlohmann::json out = {{"bench", "pipeline"},   {"model", name},
                        {"preset", c.preset},    {"schema", c.schema},
                        {"film", {c.film_width, c.film_height}}, {"bits", 16},
                        {"device", device_name(c.device)}, {"threads", omp_get_max_threads()},
                        {"reps", c.reps},        {"warmup", c.warmup},
                        {"refine_passes", pipeline.spec().refine_passes},
                        {"refine_variants", pipeline.spec().refine_variants}};
  nlohmann::json per_stage = nlohmann::json::object();
  for (const auto& [stage, v] : stages) per_stage[stage] = median(v);
  out["stages_median_ms"] = per_stage;
  out["median_s"] = median(stages.at("total")) / 1e3;
  return out;
}

}  // namespace

std::vector<nlohmann::json> pipeline_bench(const PipelineBenchConfig& c) {
  SM_CHECK(c.film_width > 0 && c.film_height > 0 && c.reps > 0 && c.warmup >= 0, "pipeline bench: bad sizes or counts");
  ModelSpec spec = model_spec_preset(schema_builtin(c.schema), c.preset);
  const Image film = bench_film(c.film_width, c.film_height);
  std::vector<nlohmann::json> out;
  {
    SpineModel model = spine_model_create(spec, 1);
    out.push_back(time_mode(Pipeline::from_model(model, c.device), film, c, "pipeline"));
  }
  spec.refine_passes = 1, spec.refine_variants = 1;  // the paper's single pass
  SpineModel model = spine_model_create(spec, 1);
  out.push_back(time_mode(Pipeline::from_model(model, c.device), film, c, "pipeline_1pass"));
  return out;
}

}  // namespace sm
