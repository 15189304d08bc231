// The 2-step inference (see pipeline.h): step 1 on the letterboxed film, step 2 on crops of the
// full-resolution film, every point mapped back exactly (letterbox and crop transforms are
// affine with closed-form inverses).
#include "models/pipeline/pipeline.h"

#include <algorithm>
#include <cmath>

#include "layers/dsnt.h"
#include "models/measure/angles.h"
#include "models/pipeline/pipeline_levels.h"
#include "tensor/check.h"
#include "tensor/stopwatch.h"

namespace sm {

namespace {

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
const Point2 kNaN2{NAN, NAN};

Tensor images_to_tensor(const std::vector<Image>& images) {
  SM_CHECK(!images.empty(), "pipeline: no images for a stage");
  const int w = images[0].width, h = images[0].height;
  Tensor t = Tensor::empty({int64_t(images.size()), 1, h, w});
  for (size_t k = 0; k < images.size(); ++k) std::copy(images[k].data.begin(), images[k].data.end(), t.f32() + k * size_t(w) * size_t(h));
  return t;
}

void stage_output_check(const StageOutput& o, int n, int64_t k, const char* stage) {
  SM_CHECK(o.n == n && o.k == k && o.coords.size() == size_t(n) * size_t(k) * 2 && o.spread.size() == size_t(n) * size_t(k),
           "pipeline: the " << stage << " stage answered " << o.n << "x" << o.k << " points, expected " << n << "x" << k);
}

// The letterboxed film of the last step-1 stage: the next one reuses it when its input size is
// the same (detect and coarse read the same 256×256 film in both presets).
struct Step1Input {
  int64_t width = 0, height = 0;
  Tensor images;  // (1, 1, height, width)
};

// Step-1 stage: letterbox, predict, map back to image pixels (the heatmaps' modes too, when
// the predictor gives them and `modes` is wanted).
void step1_stage(const Image& film, const NetSpec& net, const StagePredictor& predict, std::vector<Point2>& points,
                 std::vector<double>& spread, Step1Input& input, std::vector<std::vector<LevelCandidate>>* modes = nullptr) {
  const Letterbox lb = letterbox_fit(film.width, film.height, net.input_width, net.input_height);
  StageQuery q;
  q.letterbox = &lb;
  if (input.width != net.input_width || input.height != net.input_height || !input.images.defined()) {
    input.images = images_to_tensor({step1_input(film, lb)});
    input.width = net.input_width, input.height = net.input_height;
  }
  const StageOutput o = predict(input.images, q);
  stage_output_check(o, 1, net.net.landmarks, "step-1");
  points.assign(size_t(o.k), kNaN2);
  spread.assign(size_t(o.k), NAN);
  for (int c = 0; c < o.k; ++c) {
    const Point2 in{dsnt_denormalise(o.coords[2 * size_t(c)], net.input_width), dsnt_denormalise(o.coords[2 * size_t(c) + 1], net.input_height)};
    points[size_t(c)] = letterbox_inverse(lb, in);
    spread[size_t(c)] = o.spread[size_t(c)] / lb.scale;
  }
  if (!modes) return;
  modes->assign(size_t(o.k), {});
  if (o.peaks.size() != size_t(o.k)) return;
  for (int c = 0; c < o.k; ++c)
    for (const HeatmapPeak& pk : o.peaks[size_t(c)]) {
      const Point2 in{dsnt_denormalise(pk.x, net.input_width), dsnt_denormalise(pk.y, net.input_height)};
      (*modes)[size_t(c)].push_back({letterbox_inverse(lb, in), pk.mass});
    }
}

}  // namespace

StagePredictor stage_predictor_from_net(std::shared_ptr<DsntNet> net, Device device) {
  SM_CHECK(net, "pipeline: no network");
  net->to_device(device);
  net->inference_freeze();  // eval mode, BN folded into the convs, weights prepared once
  return [net, device](const Tensor& images, const StageQuery&) {
    NoGradGuard ng;
    DsntOutput out = net->forward_all(Var(images.to(device)));
    const Tensor coords = out.coords.value().to(Device::CPU).to(DType::F32);
    const Tensor spread = heatmap_spread(out.heatmaps.value());  // (N, K) heatmap pixels, CPU
    StageOutput o;
    o.n = int(coords.shape()[0]);
    o.k = int(coords.shape()[1]);
    o.coords.assign(coords.f32(), coords.f32() + coords.numel());
    // Heatmap pixels -> input pixels: the heatmap covers the input's field of view.
    const double stride = double(images.shape()[3]) / double(out.heatmaps.value().shape()[3]);
    o.spread.resize(size_t(spread.numel()));
    for (size_t k = 0; k < o.spread.size(); ++k) o.spread[k] = double(spread.f32()[k]) * stride;
    // The modes in the coordinates' normalisation: heatmap cell j's centre is (2j + 1)/W − 1.
    const Tensor& maps = out.heatmaps.value();
    const int64_t hh = maps.shape()[2], hw = maps.shape()[3];
    o.peaks = heatmap_peaks(maps);
    for (auto& channel : o.peaks)
      for (HeatmapPeak& pk : channel) pk.x = dsnt_normalise(pk.x, hw), pk.y = dsnt_normalise(pk.y, hh);
    return o;
  };
}

void image_standardise(Image& image) {
  SM_CHECK(!image.empty(), "image_standardise: empty image");
  double mean = 0, sq = 0;
  for (float v : image.data) mean += v;
  mean /= double(image.data.size());
  for (float v : image.data) sq += (v - mean) * (v - mean);
  const double inv = 1.0 / std::max(std::sqrt(sq / double(image.data.size())), 1e-6);
  for (float& v : image.data) v = float((v - mean) * inv);
}

Image step1_input(const Image& film, const Letterbox& lb) {
  Image in = letterbox_image(film, lb, 0.f);
  image_standardise(in);
  return in;
}

Image refine_crop_image(const Image& film, const CropParams& crop, bool mirror) {
  Image c = crop_sample(film, crop, 0.f, true);
  if (mirror)
    for (int y = 0; y < c.height; ++y) std::reverse(c.data.begin() + long(y) * c.width, c.data.begin() + long(y + 1) * c.width);
  image_standardise(c);
  return c;
}

Point2 refine_crop_from_image(const CropParams& crop, bool mirror, const Point2& p) {
  Point2 u = crop_from_image(crop, p);
  if (mirror) u[0] = double(crop.size - 1) - u[0];
  return u;
}

Point2 refine_crop_to_image(const CropParams& crop, bool mirror, const Point2& u_in) {
  Point2 u = u_in;
  if (mirror) u[0] = double(crop.size - 1) - u[0];
  return crop_to_image(crop, u);
}

bool refine_mirror(const ModelSpec& spec, const std::vector<Point2>& points) {
  return spec.crop_mirror && angles_mirror(spec.schema, points);
}

std::vector<Point2> vertebra_centres(const Schema& schema, const std::vector<Point2>& points) {
  std::vector<Point2> out(size_t(schema.vertebra_count()), kNaN2);
  for (int v = 0; v < schema.vertebra_count(); ++v) {
    Point2 c{0, 0};
    const auto idx = schema.vertebra_landmarks(v);
    bool ok = !idx.empty();
    for (int i : idx) {
      ok = ok && finite2(points[size_t(i)]);
      c[0] += points[size_t(i)][0] / double(idx.size());
      c[1] += points[size_t(i)][1] / double(idx.size());
    }
    if (ok) out[size_t(v)] = c;
  }
  return out;
}

CropParams refine_crop_params(const ModelSpec& spec, const std::vector<Point2>& coarse, const Point2& centre, int v) {
  CropParams c = crop_params_from_vertebra(spec.schema, coarse, v, spec.refine.input_width, spec.crop_margin);
  if (finite2(centre)) c.centre = centre;
  return c;
}

Pipeline::Pipeline(ModelSpec spec, StagePredictor detect, StagePredictor coarse, StagePredictor refine)
    : spec_(std::move(spec)), detect_(std::move(detect)), coarse_(std::move(coarse)), refine_(std::move(refine)) {
  SM_CHECK(detect_ && coarse_ && refine_, "pipeline: every stage needs a predictor");
}

Pipeline Pipeline::from_model(const SpineModel& model, Device device) {
  return Pipeline(model.spec, stage_predictor_from_net(model.detect, device), stage_predictor_from_net(model.coarse, device),
                  stage_predictor_from_net(model.refine, device));
}

PipelineResult Pipeline::run_step1(const Image& film) const {
  SM_CHECK(!film.empty(), "pipeline: empty image");
  const Schema& s = spec_.schema;
  PipelineResult r;
  r.image_width = film.width;
  r.image_height = film.height;
  r.pixel_spacing_mm = film.pixel_spacing_mm;
  r.film_signal = film_signal(film);
  Stopwatch clock;
  Step1Input input;
  std::vector<std::vector<LevelCandidate>> modes;
  step1_stage(film, spec_.detect, detect_, r.centres, r.centre_spread_px, input, &modes);
  levels_decode(spec_, modes, r);  // one ordered chain of levels (pipeline_levels.h)
  r.timings_ms.push_back({"detect", clock.ms()});
  clock.restart();
  step1_stage(film, spec_.coarse, coarse_, r.step1, r.step1_spread_px, input);
  coarse_reanchor(spec_, r);
  r.timings_ms.push_back({"coarse", clock.ms()});
  r.landmarks = r.step1;
  r.spread_px = r.step1_spread_px;
  const bool mirror = refine_mirror(spec_, r.step1);
  r.crops.assign(size_t(s.vertebra_count()), CropParams{});
  r.mirrored.assign(size_t(s.vertebra_count()), mirror);
  for (int v = 0; v < s.vertebra_count(); ++v) {
    try {
      r.crops[size_t(v)] = refine_crop_params(spec_, r.step1, r.centres[size_t(v)], v);
    } catch (const Error&) {
      r.crops[size_t(v)].size = 0;  // degenerate coarse corners: no crop, step 1 stays
    }
  }
  r.angles = r.step1_angles = angles_compute(s, r.step1, film.height, film.pixel_spacing_mm);  // in mm
  return r;
}

// One refinement pass over the crops in r.crops: corners (and their spreads) replaced by the
// refinement network's, mapped back through mirror and crop transform. With several variants
// (side scale, angle offset) every vertebra is cropped once per variant and the corners are
// averaged in film pixels: the variants' errors are partly independent, so the mean is steadier.
void Pipeline::refine_pass(const Image& film, PipelineResult& r, const std::vector<std::array<double, 2>>& variants,
                           const std::vector<bool>* only) const {
  const Schema& s = spec_.schema;
  std::vector<Image> crops;
  std::vector<CropParams> params;
  std::vector<bool> mirrored;
  std::vector<int> vertebrae;
  for (int v = 0; v < s.vertebra_count(); ++v) {
    if (r.crops[size_t(v)].size <= 0 || (only && !(*only)[size_t(v)])) continue;
    for (const auto& [scale, dangle] : variants) {
      CropParams c = r.crops[size_t(v)];
      c.side *= scale;
      c.angle += dangle * M_PI / 180;
      params.push_back(c);
      mirrored.push_back(r.mirrored[size_t(v)]);
      vertebrae.push_back(v);
      crops.push_back(refine_crop_image(film, c, mirrored.back()));
    }
  }
  if (crops.empty()) return;
  StageQuery q;
  q.crops = &params;
  q.mirrored = &mirrored;
  q.vertebrae = &vertebrae;
  const StageOutput o = refine_(images_to_tensor(crops), q);
  stage_output_check(o, int(crops.size()), spec_.refine.net.landmarks, "refine");
  const double w = 1.0 / double(variants.size());
  for (size_t row = 0; row < crops.size(); ++row) {
    const CropParams& c = params[row];
    const auto idx = s.vertebra_landmarks(vertebrae[row]);
    const bool first = row % variants.size() == 0;
    for (size_t ch = 0; ch < idx.size(); ++ch) {
      const size_t o_at = row * size_t(o.k) + ch;
      const Point2 u{dsnt_denormalise(o.coords[2 * o_at], c.size), dsnt_denormalise(o.coords[2 * o_at + 1], c.size)};
      const Point2 p = refine_crop_to_image(c, mirrored[row], u);
      Point2& out = r.landmarks[size_t(idx[ch])];
      double& spread = r.spread_px[size_t(idx[ch])];
      if (first) out = {0, 0}, spread = 0;
      out = {out[0] + w * p[0], out[1] + w * p[1]};
      spread += w * o.spread[o_at] * c.side / c.size;
    }
  }
}

void Pipeline::run_step2(const Image& film, PipelineResult& r) const {
  const Schema& s = spec_.schema;
  const Stopwatch clock;
  const std::vector<std::array<double, 2>> one{{1.0, 0.0}};
  // The last pass's variants: the crop itself, 10 % larger and smaller, turned by ±3°.
  const std::vector<std::array<double, 2>> last =
      spec_.refine_variants > 1 ? std::vector<std::array<double, 2>>{{1.0, 0.0}, {1.1, 0.0}, {0.9, 0.0}, {1.0, 3.0}, {1.0, -3.0}}
                                : one;
  const std::vector<std::array<double, 2>> last_used(last.begin(), last.begin() + std::min<size_t>(last.size(), size_t(spec_.refine_variants)));
  const std::vector<CropParams> step1_crops = r.crops;
  const std::string& mode = spec_.quad_check;  // "off", "flag", "retry", "fallback" (spine_model.h)
  const bool act = mode == "retry" || mode == "fallback";
  refine_pass(film, r, spec_.refine_passes == 1 ? last_used : one);
  // Further passes re-centre each crop on the refined vertebra (centre, angle and size from its
  // refined corners): the refinement network is most precise on a well-placed crop, which the
  // first pass's crop from step 1 is not always (our choice; docs/pipeline.md). With the quad
  // check acting, a quad that is no single vertebra is not re-cut from: its crop stays, so one
  // bad answer does not compound.
  for (int pass = 1; pass < spec_.refine_passes; ++pass) {
    const std::vector<std::string> bad = act ? quads_check(spec_, r, r.landmarks) : std::vector<std::string>(size_t(s.vertebra_count()));
    for (int v = 0; v < s.vertebra_count(); ++v) {
      if (r.crops[size_t(v)].size <= 0 || !bad[size_t(v)].empty()) continue;
      try {
        r.crops[size_t(v)] = crop_params_from_vertebra(s, r.landmarks, v, spec_.refine.input_width, spec_.crop_margin);
      } catch (const Error&) {
        // refined corners degenerate: keep the previous crop
      }
    }
    refine_pass(film, r, pass + 1 == spec_.refine_passes ? last_used : one);
  }
  // One vertebra per quadrilateral (issue 19 §2): a failing quad is refined once more from its
  // step-1 crop, 10 % wider (another view of the same vertebra); failing again, it keeps its
  // refined corners ("retry") or falls back to its step-1 corners ("fallback"), and is flagged.
  r.quad_check = mode == "off" ? std::vector<std::string>(size_t(s.vertebra_count())) : quads_check(spec_, r, r.landmarks);
  std::vector<bool> retry(size_t(s.vertebra_count()), false);
  bool any = false;
  for (int v = 0; v < s.vertebra_count() && act; ++v)
    if (!r.quad_check[size_t(v)].empty() && step1_crops[size_t(v)].size > 0) {
      retry[size_t(v)] = any = true;
      r.crops[size_t(v)] = step1_crops[size_t(v)];
      r.crops[size_t(v)].side *= 1.1;
    }
  if (any) {
    const std::vector<Point2> refined = r.landmarks;
    const std::vector<double> refined_spread = r.spread_px;
    refine_pass(film, r, one, &retry);
    const std::vector<std::string> again = quads_check(spec_, r, r.landmarks);
    for (int v = 0; v < s.vertebra_count(); ++v) {
      if (!retry[size_t(v)]) continue;
      if (again[size_t(v)].empty()) {
        r.quad_check[size_t(v)].clear();
        continue;
      }
      const bool back = mode == "fallback";
      for (int i : s.vertebra_landmarks(v)) {
        r.landmarks[size_t(i)] = back ? r.step1[size_t(i)] : refined[size_t(i)];
        r.spread_px[size_t(i)] = back ? r.step1_spread_px[size_t(i)] : refined_spread[size_t(i)];
      }
    }
  }
  r.timings_ms.push_back({"refine", clock.ms()});
  r.angles = angles_compute(s, r.landmarks, film.height, film.pixel_spacing_mm);
  pipeline_flags(spec_, r);
  pipeline_verdict(spec_, r);
}

double film_signal(const Image& film) {
  if (film.empty() || film.data.empty()) return 0;
  double mean = 0, sq = 0;
  for (float v : film.data) mean += v;
  mean /= double(film.data.size());
  for (float v : film.data) sq += (v - mean) * (v - mean);
  const int bits = std::min(16, std::max(1, film.bits));
  return std::sqrt(sq / double(film.data.size())) / (std::ldexp(1.0, bits) - 1);
}

PipelineResult Pipeline::run(const Image& film) const {
  const Stopwatch clock;
  PipelineResult r = run_step1(film);
  run_step2(film, r);
  r.timings_ms.push_back({"total", clock.ms()});
  return r;
}

}  // namespace sm
