// The pipeline's guarantees on level identity (issue 19 §1–2), between its network stages:
//   step 1 — the detection heatmaps' modes decoded jointly as one ordered chain (level_chain.h),
//            and coarse corners that sit on another level moved onto their decoded centre;
//   step 2 — every refined quadrilateral checked to be one vertebral body (quad_check.h).
#pragma once
#include <string>
#include <vector>

#include "models/pipeline/pipeline.h"

namespace sm {

// r.centres holds the detection means; candidates (V) the modes of each level's heatmap in
// film pixels. With a level prior in the spec and any candidate, r.centres becomes the decoded
// chain and r.level_source says where each centre came from: the mean when the chain chose the
// strongest mode and the mean lies within half a level spacing of it (the mean is the more
// precise), else the chosen mode, or
// the prior's placement for a level no mode fits. Without a prior, nothing changes.
void levels_decode(const ModelSpec& spec, const std::vector<std::vector<LevelCandidate>>& candidates, PipelineResult& r);

// The local level spacing of each decoded centre: the distance to its nearer neighbour (NaN
// where neither neighbour is finite).
std::vector<double> level_spacings(const std::vector<Point2>& centres);

// Coarse corners of a level whose centre lies more than half a level spacing from the decoded
// centre are translated onto it (their shape and angle kept): the coarse network slid by a
// level there, the detection chain did not. Sets r.coarse_reanchored; call after levels_decode.
void coarse_reanchor(const ModelSpec& spec, PipelineResult& r);

// Per vertebra, "" or why `points` fail the one-vertebra check against r's decoded centres and
// its step-1 corners' sizes (the neighbours' median, two levels each side).
std::vector<std::string> quads_check(const ModelSpec& spec, const PipelineResult& r, const std::vector<Point2>& points);

}  // namespace sm
