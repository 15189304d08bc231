// Refinement samples (see refine_samples.h).
#include "train/data/refine_samples.h"

#include <cmath>

#include "layers/dsnt.h"
#include "models/pipeline/pipeline.h"
#include "models/pipeline/pipeline_levels.h"
#include "tensor/check.h"
#include "tensor/json_field.h"

namespace sm {

namespace {

double angle_wrap(double a) { return std::remainder(a, 2 * M_PI); }  // to [-π, π]

std::vector<Point2> points_visible(const Annotation& a) {
  std::vector<Point2> p = a.points;
  for (size_t k = 0; k < p.size(); ++k)
    if (k < a.visible.size() && !a.visible[k]) p[k] = {NAN, NAN};
  return p;
}

}  // namespace

CropError crop_error(const CropParams& t, const CropParams& s) {
  const double c = std::cos(t.angle), sn = std::sin(t.angle);
  const double dx = s.centre[0] - t.centre[0], dy = s.centre[1] - t.centre[1];
  // The shift seen in the truth crop's axes (R(−θ) d), in units of its side.
  return {(c * dx + sn * dy) / t.side, (-sn * dx + c * dy) / t.side, angle_wrap(s.angle - t.angle), std::log(s.side / t.side)};
}

CropParams crop_error_apply(const CropParams& t, const CropError& e) {
  const double c = std::cos(t.angle), sn = std::sin(t.angle);
  CropParams out = t;
  out.centre = {t.centre[0] + t.side * (c * e.dx - sn * e.dy), t.centre[1] + t.side * (sn * e.dx + c * e.dy)};
  out.angle = t.angle + e.angle;
  out.side = t.side * std::exp(e.log_scale);
  return out;
}

CropError crop_error_shift_bound(CropError e, double max_shift) {
  const double shift = std::hypot(e.dx, e.dy);
  if (shift > max_shift && shift > 0) {
    const double k = std::max(max_shift, 0.0) / shift;
    e.dx *= k, e.dy *= k;
  }
  return e;
}

nlohmann::json refine_jitter_to_json(const RefineJitter& j) {
  nlohmann::json m = nlohmann::json::array();
  for (const CropError& e : j.measured) m.push_back({e.dx, e.dy, e.angle, e.log_scale});
  return {{"widen", j.widen},          {"centre_frac", j.centre_frac}, {"angle_deg", j.angle_deg},
          {"scale_log", j.scale_log},  {"max_centre_frac", j.max_centre_frac}, {"max_level_frac", j.max_level_frac},
          {"measured", m}};
}

RefineJitter refine_jitter_from_json(const nlohmann::json& j, const std::string& source) {
  RefineJitter r;
  const std::string where = source + ": refinement jitter";
  if (!j.is_null()) json_keys_check(j, {"widen", "centre_frac", "angle_deg", "scale_log", "max_centre_frac", "max_level_frac", "measured"}, where);
  r.widen = json_field(j, "widen", r.widen, where);
  r.centre_frac = json_field(j, "centre_frac", r.centre_frac, where);
  r.angle_deg = json_field(j, "angle_deg", r.angle_deg, where);
  r.scale_log = json_field(j, "scale_log", r.scale_log, where);
  r.max_centre_frac = json_field(j, "max_centre_frac", r.max_centre_frac, where);
  r.max_level_frac = json_field(j, "max_level_frac", r.max_level_frac, where);
  for (const auto& e : json_field(j, "measured", std::vector<std::vector<double>>{}, where)) {
    SM_CHECK(e.size() == 4, where << ": 'measured' entries are [dx, dy, angle, log_scale]");
    r.measured.push_back({e[0], e[1], e[2], e[3]});
  }
  SM_CHECK(r.widen >= 0 && r.widen <= 10 && r.centre_frac >= 0 && r.centre_frac <= 1 && r.angle_deg >= 0 &&
               r.angle_deg <= 90 && r.scale_log >= 0 && r.scale_log <= 2 && r.max_level_frac >= 0 && r.max_level_frac <= 1,
           source << ": refinement jitter values out of range (widen 0..10, centre_frac 0..1, angle_deg 0..90, scale_log 0..2, "
                     "max_level_frac 0..1)");
  return r;
}

RefineSamples::RefineSamples(std::shared_ptr<FilmCache> films, const ModelSpec& spec, const RefineSampleConfig& config)
    : films_(std::move(films)), spec_(spec), cfg_(config) {
  const Schema& s = spec_.schema;
  // Keep only measured errors that a refinement can fix: a crop centred on another level is a
  // step-1 miss, not something to learn from.
  std::vector<CropError> kept;
  for (const CropError& e : cfg_.jitter.measured)
    if (std::hypot(e.dx, e.dy) <= cfg_.jitter.max_centre_frac) kept.push_back(e);
  cfg_.jitter.measured = kept;
  for (size_t f = 0; f < films_->size(); ++f) {
    const std::vector<Point2> pts = points_visible(films_->entry(f).annotation);
    const std::vector<double> spacing = level_spacings(vertebra_centres(s, pts));
    for (int v = 0; v < s.vertebra_count(); ++v)
      if (vertebra_frame(s, pts, v).valid) {
        pairs_.push_back({uint32_t(f), uint32_t(v)});
        spacing_.push_back(spacing[size_t(v)]);
      }
  }
  SM_CHECK(!pairs_.empty(), "refinement samples: no vertebra with all its corners in the training data");
}

LoaderConfig RefineSamples::loader_config(int batch) const {
  LoaderConfig c;
  c.size = pairs_.size();
  c.batch = batch;
  c.channels = 1;
  c.height = c.width = spec_.refine.input_width;
  c.landmarks = int(spec_.refine.net.landmarks);
  c.seed = cfg_.seed;
  return c;
}

SampleFn RefineSamples::sample_fn() const {
  auto films = films_;
  const ModelSpec spec = spec_;
  const RefineSampleConfig cfg = cfg_;
  const auto pairs = pairs_;
  const auto spacing = spacing_;
  return [films, spec, cfg, pairs, spacing](uint64_t epoch, uint64_t index) {
    SM_CHECK(index < pairs.size(), "refinement samples: index " << index << " out of range");
    const auto [f, v] = pairs[index];
    const Schema& s = spec.schema;
    std::shared_ptr<const Image> film = films->get(f);
    const std::vector<Point2> gt = points_visible(films->entry(f).annotation);
    const CropParams truth = crop_params_from_vertebra(s, gt, int(v), spec.refine.input_width, spec.crop_margin);
    const bool mirror = refine_mirror(spec, gt);
    CropParams crop = truth;
    Rng rng = augment_rng(cfg.seed, epoch, index).derive("jitter");
    if (cfg.augment) {
      const RefineJitter& j = cfg.jitter;
      CropError e;
      if (!j.measured.empty()) {
        const CropError& m = j.measured[rng.below(j.measured.size())];
        e = {m.dx * j.widen, m.dy * j.widen, m.angle * j.widen, m.log_scale * j.widen};
      }
      e.dx += j.centre_frac * rng.normal();
      e.dy += j.centre_frac * rng.normal();
      e.angle += j.angle_deg * M_PI / 180 * rng.normal();
      e.log_scale += j.scale_log * rng.normal();
      // The crop centre must stay nearer its own vertebra than a neighbour (RefineJitter).
      if (j.max_level_frac > 0 && std::isfinite(spacing[index])) e = crop_error_shift_bound(e, j.max_level_frac * spacing[index] / truth.side);
      crop = crop_error_apply(truth, e);
    }
    Image image = refine_crop_image(*film, crop, mirror);
    if (cfg.augment && cfg.intensity.intensity) {
      AugmentOptions o = cfg.intensity;
      o.geometric = false;
      const std::vector<Point2> none(size_t(s.landmark_count()), Point2{0, 0});
      image = augment_apply(image, none, {}, s, o, cfg.seed ^ 0x5eedULL, epoch, index).image;
      image_standardise(image);
    }
    Sample out;
    out.image = std::move(image.data);
    const auto idx = s.vertebra_landmarks(int(v));
    const int S = crop.size;
    for (int64_t ch = 0; ch < spec.refine.net.landmarks; ++ch) {
      Point2 u{0, 0};
      bool ok = size_t(ch) < idx.size();
      if (ok) {
        u = refine_crop_from_image(crop, mirror, gt[size_t(idx[size_t(ch)])]);
        ok = u[0] > -0.5 && u[1] > -0.5 && u[0] < S - 0.5 && u[1] < S - 0.5;
      }
      out.targets.push_back(ok ? float(dsnt_normalise(u[0], S)) : 0.f);
      out.targets.push_back(ok ? float(dsnt_normalise(u[1], S)) : 0.f);
      out.visible.push_back(ok ? 1.f : 0.f);
    }
    return out;
  };
}

}  // namespace sm
