// Quality flags of a pipeline result (see pipeline.h): cheap geometric checks that catch the
// failures that matter most — step-1 misses (a level off the image, levels out of order or on
// the same vertebra, detection and coarse networks disagreeing), refinements that wander, and
// corner sets that are no longer a vertebral body.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "models/geometry/quad_check.h"
#include "models/measure/angles.h"
#include "models/pipeline/pipeline.h"

namespace sm {

namespace {

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
double dist(const Point2& a, const Point2& b) { return std::hypot(a[0] - b[0], a[1] - b[1]); }

struct FlagSink {
  const Schema& schema;
  PipelineResult& r;
  void vertebra(const std::string& kind, int v, const std::string& what) {
    r.flags.push_back(kind + ":" + what);
    for (int i : schema.vertebra_landmarks(v)) r.landmark_flagged[size_t(i)] = true;
  }
  void landmark(const std::string& kind, int i) {
    r.flags.push_back(kind + ":" + schema.landmarks[size_t(i)]);
    r.landmark_flagged[size_t(i)] = true;
  }
};

// Plausible range of an angle by its rule (degrees): wide enough for severe real spines.
bool angle_plausible(const std::string& type, double a) {
  if (type == "endplate_difference") return a >= -45 && a <= 110;
  if (type == "endplate_slope") return a >= -20 && a <= 85;
  if (type == "aasce_cobb") return a >= 0 && a <= 120;
  return true;
}

// Levels along the spine: consecutive centres must advance along the spine axis (first to
// last centre) by about the film's typical level spacing. Much less means two channels on one
// vertebra or a swap; much more a skipped level. The median spacing is robust to one bad level,
// so a whole run of levels slid by one vertebra shows up as a double and a half gap.
void levels_order_check(const Schema& s, const std::vector<Point2>& centres, const char* source, FlagSink& sink) {
  const int V = int(centres.size());
  for (const Point2& c : centres)
    if (!finite2(c)) return;
  const double len = dist(centres.front(), centres.back());
  if (!(len > 0) || V < 3) return;
  const Point2 axis{(centres.back()[0] - centres.front()[0]) / len, (centres.back()[1] - centres.front()[1]) / len};
  std::vector<double> steps;
  for (int v = 0; v + 1 < V; ++v)
    steps.push_back((centres[size_t(v + 1)][0] - centres[size_t(v)][0]) * axis[0] + (centres[size_t(v + 1)][1] - centres[size_t(v)][1]) * axis[1]);
  std::vector<double> sorted = steps;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (int v = 0; v + 1 < V; ++v) {
    const double r = steps[size_t(v)] / median;
    if (median > 0 && r > 0.45 && r < 1.6) continue;
    sink.vertebra(std::string("levels_out_of_order"), v, s.vertebrae[size_t(v)].name + "," + s.vertebrae[size_t(v + 1)].name + source);
    for (int i : s.vertebra_landmarks(v + 1)) sink.r.landmark_flagged[size_t(i)] = true;
  }
}

void levels_check(const ModelSpec& spec, FlagSink& sink) {
  const Schema& s = spec.schema;
  const PipelineResult& r = sink.r;
  for (int v = 0; v < s.vertebra_count(); ++v) {
    const Point2& c = r.centres[size_t(v)];
    if (!finite2(c) || c[0] < -0.5 || c[1] < -0.5 || c[0] > r.image_width - 0.5 || c[1] > r.image_height - 0.5)
      sink.vertebra("level_outside_image", v, s.vertebrae[size_t(v)].name);
  }
  levels_order_check(s, r.centres, "", sink);                                // the detection network
  levels_order_check(s, vertebra_centres(s, r.landmarks), " (refined)", sink);  // the final corners
}

// The chain of detected levels against the training orientation: films are trained upright
// (cranial up, +y caudal) with rotations of ±10° (augment.h), and real films tilt the lumbar
// chain by up to ~20°. An axis (first to last finite centre) more than kVerdictAxisDeg from +y
// is a rotated (or upside-down) film, or a chain that is no spine.
void axis_check(const PipelineResult& r, std::vector<std::string>& flags) {
  std::vector<Point2> c;
  for (const Point2& p : r.centres)
    if (finite2(p)) c.push_back(p);
  if (c.size() < 2) return;
  const double dx = c.back()[0] - c.front()[0], dy = c.back()[1] - c.front()[1];
  if (!(std::hypot(dx, dy) > 0)) return;  // a collapsed chain: the verdict rejects it
  const double deg = std::atan2(std::fabs(dx), dy) * 180 / M_PI;  // 0: straight down the image
  if (deg > kVerdictAxisDeg) flags.push_back("spine_axis_rotated:" + std::to_string(int(std::lround(deg))));
}

// The detection heatmaps' spread against the vertebra size (median over the levels, each from
// its coarse corners). A trained network's heatmap is a blob of about one heatmap cell (σ ≈ 1
// cell, spread ≈ 0.4 × a vertebra on the small preset); a net that sees no spine answers with
// a diffuse heatmap (uniform: spread ≈ 0.41 × the heatmap side, 3–4 vertebrae). Noise, chest
// and wrong-view films land there.
void spread_check(const Schema& s, const PipelineResult& r, const std::vector<VertebraFrame>& frames,
                  std::vector<std::string>& flags) {
  std::vector<double> sizes, ratios;
  for (size_t v = 0; v < frames.size(); ++v)
    if (frames[v].valid) sizes.push_back(std::max(frames[v].width, frames[v].height));
  if (sizes.empty() || r.centre_spread_px.size() != size_t(s.vertebra_count())) return;
  std::sort(sizes.begin(), sizes.end());
  const double size = sizes[sizes.size() / 2];
  for (double sp : r.centre_spread_px)
    ratios.push_back(std::isfinite(sp) ? sp / std::max(size, 1e-9) : 1e30);
  std::sort(ratios.begin(), ratios.end());
  const double median = ratios[ratios.size() / 2];
  if (!(median <= kVerdictSpreadRatio)) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", std::min(median, 999.0));
    flags.push_back(std::string("heatmap_spread_large:") + text);
  }
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Rejections that need no flag: the film carries no usable signal, or it is far too small.
void film_reject_reasons(const PipelineResult& r, std::vector<std::string>& reasons) {
  char text[64];
  if (!(r.film_signal >= kVerdictMinSignal)) {
    std::snprintf(text, sizeof(text), "no_signal:std=%.4f", std::isfinite(r.film_signal) ? r.film_signal : 0.0);
    reasons.push_back(text);
  }
  if (std::min(r.image_width, r.image_height) < kVerdictMinSide)
    reasons.push_back("too_small:" + std::to_string(r.image_width) + "x" + std::to_string(r.image_height));
}

// The level chain cannot be decoded when more than half of the levels lie outside the film,
// when at least half of the consecutive detected levels are out of order, or when the whole
// chain (first to last level) spans less than 2 % of the film's diagonal (every channel on one
// spot; a real lumbar chain spans ~40 % of the film).
void chain_reject_reasons(const Schema& s, const PipelineResult& r, std::vector<std::string>& reasons) {
  const int V = s.vertebra_count();
  int outside = 0, disorder = 0;
  for (const std::string& f : r.flags) {
    if (starts_with(f, "level_outside_image:")) ++outside;
    if (starts_with(f, "levels_out_of_order:") && f.find("(refined)") == std::string::npos) ++disorder;
  }
  if (2 * outside > V) reasons.push_back("level_chain_not_decodable:" + std::to_string(outside) + " of " + std::to_string(V) + " levels outside the film");
  else if (V >= 3 && 2 * disorder >= V - 1)
    reasons.push_back("level_chain_not_decodable:" + std::to_string(disorder) + " of " + std::to_string(V - 1) + " steps out of order");
  else if (V >= 2 && finite2(r.centres.front()) && finite2(r.centres.back()) &&
           dist(r.centres.front(), r.centres.back()) < 0.02 * std::hypot(r.image_width, r.image_height))
    reasons.push_back("level_chain_not_decodable:collapsed");
}

}  // namespace

void pipeline_verdict(const ModelSpec& spec, PipelineResult& r) {
  std::vector<std::string> reject;
  film_reject_reasons(r, reject);
  if (int(r.centres.size()) == spec.schema.vertebra_count()) chain_reject_reasons(spec.schema, r, reject);
  r.status_reasons.clear();
  if (!reject.empty()) {
    r.status = "rejected";
    r.status_reasons = reject;
    return;
  }
  // Every flag predicts a gross error but anisotropic_pixels, which is corrected (angles in mm).
  for (const std::string& f : r.flags)
    if (!starts_with(f, "anisotropic_pixels:")) r.status_reasons.push_back(f);
  r.status = r.status_reasons.empty() ? "ok" : "review";
}

void pipeline_flags(const ModelSpec& spec, PipelineResult& r) {
  const Schema& s = spec.schema;
  const int V = s.vertebra_count(), L = s.landmark_count();
  r.flags.clear();
  r.landmark_flagged.assign(size_t(L), false);
  FlagSink sink{s, r};
  std::vector<VertebraFrame> frames;
  for (int v = 0; v < V; ++v) frames.push_back(vertebra_frame(s, r.step1, v));
  levels_check(spec, sink);
  const std::vector<Point2> coarse_centres = vertebra_centres(s, r.step1);
  for (int v = 0; v < V; ++v) {
    const VertebraFrame& f = frames[size_t(v)];
    const double size = f.valid ? std::max(f.width, f.height) : 0;
    const std::string& name = s.vertebrae[size_t(v)].name;
    if (!(size > 0)) {
      sink.vertebra("degenerate_quadrilateral", v, name);
      continue;
    }
    if (finite2(r.centres[size_t(v)]) && dist(r.centres[size_t(v)], coarse_centres[size_t(v)]) > 0.35 * size)
      sink.vertebra("detect_coarse_disagree", v, name);
    for (int i : s.vertebra_landmarks(v))
      if (!finite2(r.landmarks[size_t(i)]) || dist(r.landmarks[size_t(i)], r.step1[size_t(i)]) > spec.flag_refine_shift * size)
        sink.landmark("refine_far_from_step1", i);
    if (!polygon_healthy(vertebra_polygon(s, r.landmarks, v))) sink.vertebra("degenerate_quadrilateral", v, name);
  }
  // The ordered level decoding and the one-vertebra check (pipeline_levels.cpp).
  for (int v = 0; v < V; ++v) {
    const std::string& name = s.vertebrae[size_t(v)].name;
    if (size_t(v) < r.level_source.size() && r.level_source[size_t(v)] == LevelSource::Prior) sink.vertebra("level_not_detected", v, name);
    if (size_t(v) < r.level_source.size() && r.level_source[size_t(v)] == LevelSource::Peak) sink.vertebra("level_redecoded", v, name);
    if (size_t(v) < r.coarse_reanchored.size() && r.coarse_reanchored[size_t(v)]) sink.vertebra("coarse_reanchored", v, name);
    if (size_t(v) < r.quad_check.size() && !r.quad_check[size_t(v)].empty())
      sink.vertebra("quad_check_failed", v, name + ":" + r.quad_check[size_t(v)]);
  }
  std::vector<std::string> types;  // the rule type of each angle (one rule may name several)
  for (const auto& rule : s.angle_rules) types.insert(types.end(), rule.names.size(), rule.type);
  for (size_t k = 0; k < s.angles.size() && k < r.angles.size(); ++k) {
    const std::string type = k < types.size() ? types[k] : "";
    if (!std::isfinite(r.angles[k])) r.flags.push_back("angle_not_computable:" + s.angles[k]);
    else if (!angle_plausible(type, r.angles[k])) r.flags.push_back("angle_out_of_range:" + s.angles[k]);
  }
  axis_check(r, r.flags);
  spread_check(s, r, frames, r.flags);
  const std::string anisotropic = pixel_anisotropy_flag(r.pixel_spacing_mm);
  if (!anisotropic.empty()) r.flags.push_back(anisotropic);
}

}  // namespace sm
