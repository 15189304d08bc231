// Helpers of the pipeline tests (test_pipeline, test_verdict): stage predictors that answer with
// the ground truth through the query the pipeline hands them, so that the geometry around the
// networks (letterbox, crops, mirroring, back-mapping) and the checks after them can be tested
// exactly; and the small preset made tiny for quick real networks.
#pragma once
#include <doctest/doctest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "layers/dsnt.h"
#include "models/pipeline/pipeline.h"
#include "models/pipeline/pipeline_levels.h"

namespace sm::test {

// Step 1 answers `centres` (detection; empty: the ground truth's vertebra centres) and `gt`
// (coarse); the refinement answers `gt` in each crop. Every heatmap's spread is `spread` input
// pixels (step 1) or 1 (refinement).
struct Oracle {
  Schema schema;
  std::vector<Point2> gt, centres;
  int64_t refine_channels = 4;
  double spread = 1.0;

  StageOutput step1(const Tensor& images, const StageQuery& q, const std::vector<Point2>& pts) const {
    REQUIRE(q.letterbox != nullptr);
    const int w = int(images.shape()[3]), h = int(images.shape()[2]);
    StageOutput o;
    o.n = 1, o.k = int(pts.size());
    for (const Point2& p : pts) {
      const Point2 in = letterbox_forward(*q.letterbox, p);
      o.coords.push_back(dsnt_normalise(in[0], w));
      o.coords.push_back(dsnt_normalise(in[1], h));
      o.spread.push_back(spread);
    }
    return o;
  }
  StageOutput refine(const Tensor&, const StageQuery& q) const {
    REQUIRE(q.crops != nullptr);
    StageOutput o;
    o.n = int(q.crops->size()), o.k = int(refine_channels);
    for (size_t r = 0; r < q.crops->size(); ++r) {
      const CropParams& c = (*q.crops)[r];
      const auto idx = schema.vertebra_landmarks((*q.vertebrae)[r]);
      for (int64_t ch = 0; ch < refine_channels; ++ch) {
        Point2 u{0, 0};
        if (size_t(ch) < idx.size()) u = refine_crop_from_image(c, (*q.mirrored)[r], gt[size_t(idx[size_t(ch)])]);
        o.coords.push_back(dsnt_normalise(u[0], c.size));
        o.coords.push_back(dsnt_normalise(u[1], c.size));
        o.spread.push_back(1.0);
      }
    }
    return o;
  }
};

inline Pipeline oracle_pipeline(const ModelSpec& spec, std::shared_ptr<Oracle> o) {
  if (o->centres.empty()) o->centres = vertebra_centres(spec.schema, o->gt);
  auto detect = [o](const Tensor& x, const StageQuery& q) { return o->step1(x, q, o->centres); };
  auto coarse = [o](const Tensor& x, const StageQuery& q) { return o->step1(x, q, o->gt); };
  auto refine = [o](const Tensor& x, const StageQuery& q) { return o->refine(x, q); };
  return Pipeline(spec, detect, coarse, refine);
}

// The small preset with 4–8 channels, one block per stage, 64-pixel films and 32-pixel crops.
inline ModelSpec spec_tiny_pipeline(const Schema& schema) {
  ModelSpec s = model_spec_preset(schema, "small");
  model_spec_override(s, nlohmann::json::parse(R"({
    "detect": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
    "coarse": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
    "refine": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [32, 32]}})"), "test");
  return s;
}

// The one-vertebra check (quads_check) of annotated corners, each against its own vertebra's
// centre and its neighbours' sizes: per vertebra "" or why it fails.
inline std::vector<std::string> annotated_quads_check(const ModelSpec& spec, const std::vector<Point2>& points) {
  PipelineResult r;
  r.step1 = points;
  r.centres = vertebra_centres(spec.schema, points);
  return quads_check(spec, r, points);
}

}  // namespace sm::test
