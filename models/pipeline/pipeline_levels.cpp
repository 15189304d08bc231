// Level identity between the pipeline's stages (see pipeline_levels.h).
#include "models/pipeline/pipeline_levels.h"

#include <algorithm>
#include <cmath>

#include "models/geometry/quad_check.h"

namespace sm {

namespace {

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
double dist(const Point2& a, const Point2& b) { return std::hypot(a[0] - b[0], a[1] - b[1]); }

}  // namespace

std::vector<double> level_spacings(const std::vector<Point2>& c) {
  std::vector<double> out(c.size(), NAN);
  for (size_t v = 0; v < c.size(); ++v) {
    if (!finite2(c[v])) continue;
    if (v > 0 && finite2(c[v - 1])) out[v] = dist(c[v], c[v - 1]);
    if (v + 1 < c.size() && finite2(c[v + 1])) {
      const double d = dist(c[v], c[v + 1]);
      if (!(out[v] <= d)) out[v] = d;
    }
  }
  return out;
}

void levels_decode(const ModelSpec& spec, const std::vector<std::vector<LevelCandidate>>& candidates, PipelineResult& r) {
  const size_t V = r.centres.size();
  r.level_source.assign(V, LevelSource::Mean);
  if (spec.level_prior.empty() || candidates.size() != V) return;
  bool any = false;
  for (const auto& c : candidates) any = any || !c.empty();
  if (!any) return;
  const LevelDecode d = level_chain_decode(candidates, spec.level_prior);
  if (!d.decoded) return;
  const std::vector<double> spacing = level_spacings(d.centres);
  for (size_t v = 0; v < V; ++v) {
    if (d.chosen[v] < 0) {
      r.centres[v] = d.centres[v];
      r.level_source[v] = LevelSource::Prior;
      continue;
    }
    // The mean is kept when the chain chose the heatmap's strongest mode and the mean lies
    // nearer that mode than half a level spacing: it is the network's trained, sub-cell answer
    // (a mode's window centroid on a coarse heatmap is less precise). A weaker mode chosen, or a
    // mean halfway to another level, means the mean sits between two hypotheses: the mode is the
    // level.
    int strongest = 0;
    for (int i = 1; i < int(candidates[v].size()); ++i)
      if (candidates[v][size_t(i)].mass > candidates[v][size_t(strongest)].mass) strongest = i;
    const double half = 0.5 * (std::isfinite(spacing[v]) ? spacing[v] : d.scale);
    if (d.chosen[v] == strongest && finite2(r.centres[v]) && dist(r.centres[v], d.centres[v]) <= half) continue;
    r.centres[v] = d.centres[v];
    r.level_source[v] = LevelSource::Peak;
  }
}

void coarse_reanchor(const ModelSpec& spec, PipelineResult& r) {
  const Schema& s = spec.schema;
  const size_t V = size_t(s.vertebra_count());
  r.coarse_reanchored.assign(V, false);
  if (spec.level_prior.empty()) return;  // no decoded chain to anchor to
  const std::vector<Point2> coarse = vertebra_centres(s, r.step1);
  const std::vector<double> spacing = level_spacings(r.centres);
  for (size_t v = 0; v < V; ++v) {
    if (!finite2(r.centres[v]) || !finite2(coarse[v]) || !std::isfinite(spacing[v])) continue;
    if (dist(coarse[v], r.centres[v]) <= 0.5 * spacing[v]) continue;
    const double dx = r.centres[v][0] - coarse[v][0], dy = r.centres[v][1] - coarse[v][1];
    for (int i : s.vertebra_landmarks(int(v))) r.step1[size_t(i)] = {r.step1[size_t(i)][0] + dx, r.step1[size_t(i)][1] + dy};
    r.coarse_reanchored[v] = true;
  }
}

std::vector<std::string> quads_check(const ModelSpec& spec, const PipelineResult& r, const std::vector<Point2>& points) {
  const Schema& s = spec.schema;
  const int V = s.vertebra_count();
  std::vector<double> sizes(static_cast<size_t>(V));
  for (int v = 0; v < V; ++v) sizes[size_t(v)] = vertebra_size(s, r.step1, v);
  const std::vector<double> spacing = level_spacings(r.centres);
  std::vector<std::string> out(static_cast<size_t>(V));
  for (int v = 0; v < V; ++v) {
    std::vector<double> near;
    for (int u = std::max(0, v - 2); u <= std::min(V - 1, v + 2); ++u)
      if (u != v && std::isfinite(sizes[size_t(u)])) near.push_back(sizes[size_t(u)]);
    std::sort(near.begin(), near.end());
    const double neighbour = near.empty() ? NAN : near.size() % 2 ? near[near.size() / 2] : 0.5 * (near[near.size() / 2 - 1] + near[near.size() / 2]);
    out[size_t(v)] = quad_check(s, points, v, neighbour, r.centres[size_t(v)], spacing[size_t(v)]);
  }
  return out;
}

}  // namespace sm
