// Synthetic lateral lumbar radiograph (method.md §7.2): samples the anatomy, frames it, draws the
// density, then simulates the film: exponential attenuation, heel-effect gradient, gamma and
// contrast, blur, collimation, side marker and signal-dependent noise. Ground truth is the
// exact image of the sampled corners under the framing transform.
#include "train/synth/synth.h"

#include <algorithm>
#include <cmath>

#include "models/geometry/annotation.h"
#include "models/image/image_io.h"
#include "tensor/check.h"
#include "tensor/rng.h"
#include "train/synth/scene.h"

namespace sm {

namespace {

using synth::Vec2;

const char* const kCorners[4] = {"sup_ant", "sup_post", "inf_post", "inf_ant"};

// Zero-mean, unit-ish texture: white noise blurred to a ~1 px grain (trabecular pattern).
Image texture_make(int size, Rng& rng, double sigma) {
  Image t(size, size);
  for (float& v : t.data) v = float(int32_t(rng.next_u32() >> 8) - (1 << 23)) * (1.f / float(1 << 23));
  synth::gaussian_blur(t, sigma);
  double ss = 0;
  for (float v : t.data) ss += double(v) * v;
  float k = float(1.0 / std::sqrt(ss / double(t.data.size()) + 1e-12));
  for (float& v : t.data) v *= k;
  return t;
}

// 5x7 bitmaps of the side-marker letters.
const uint8_t kGlyphL[7] = {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F};
const uint8_t kGlyphR[7] = {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11};

// Framing: scale so that T12..S1 spans a random fraction of the image, random rotation and
// offset, resampled until every landmark lies at least `margin` pixels inside.
synth::Similarity framing_sample(const std::vector<Vec2>& pts_mm, int size, Rng& rng) {
  double ymin = 1e30, ymax = -1e30, xmin = 1e30, xmax = -1e30;
  for (const Vec2& p : pts_mm) ymin = std::min(ymin, p[1]), ymax = std::max(ymax, p[1]), xmin = std::min(xmin, p[0]), xmax = std::max(xmax, p[0]);
  synth::Similarity T;
  T.flip = rng.bernoulli(0.5);
  T.origin = {0.5 * (xmin + xmax), 0.5 * (ymin + ymax)};
  double fill = rng.uniform(0.45, 0.85);
  const double margin = 0.03 * size;
  for (int attempt = 0; attempt < 40; ++attempt) {
    T.scale = fill * size / std::max(1.0, std::hypot(ymax - ymin, xmax - xmin));
    T.angle = std::clamp(rng.normal(0.0, 0.1), -0.3, 0.3);
    T.centre = {0.5 * (size - 1) + rng.normal(0.0, 0.08 * size), 0.5 * (size - 1) + rng.normal(0.0, 0.08 * size)};
    bool inside = true;
    for (const Vec2& p : pts_mm) {
      Vec2 q = T.apply(p);
      inside = inside && q[0] >= margin && q[1] >= margin && q[0] <= size - 1 - margin && q[1] <= size - 1 - margin;
    }
    if (inside) return T;
    fill *= 0.97;
  }
  T.centre = {0.5 * (size - 1), 0.5 * (size - 1)};
  T.angle = 0;
  T.scale = 0.8 * size / std::max(1.0, std::hypot(ymax - ymin, xmax - xmin));
  return T;
}

// The film: density -> intensity in [0, 1] with a random exposure curve and detector effects.
void film_simulate(Image& img, const std::vector<Vec2>& pts_px, Rng& rng) {
  const int n = img.width;
  double k = rng.uniform(0.9, 1.8), gamma = rng.uniform(0.7, 1.4);
  double lo = rng.uniform(0.0, 0.15), hi = rng.uniform(0.75, 1.0);
  double heel = rng.normal(0.0, 0.12), heel_dir = rng.uniform(0, 2 * M_PI);
  double hx = std::cos(heel_dir) / n, hy = std::sin(heel_dir) / n;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      float& v = img.data[size_t(y) * size_t(n) + size_t(x)];
      double I = 1.0 - std::exp(-k * std::max(0.f, v));
      I *= 1.0 + heel * ((x - 0.5 * n) * hx + (y - 0.5 * n) * hy);
      v = float(lo + (hi - lo) * std::pow(std::clamp(I, 0.0, 1.0), gamma));
    }
  // Side marker (lead letter, bright) in a corner away from the landmarks.
  if (rng.bernoulli(0.7)) {
    int cell = std::max(2, n / 90), corner = int(rng.below(4));
    int x0 = (corner & 1) ? n - 8 * cell : 2 * cell, y0 = (corner & 2) ? n - 10 * cell : 2 * cell;
    const uint8_t* glyph = rng.bernoulli(0.5) ? kGlyphL : kGlyphR;
    bool clear = true;
    for (const Vec2& p : pts_px) clear = clear && !(p[0] > x0 - 2 * cell && p[0] < x0 + 7 * cell && p[1] > y0 - 2 * cell && p[1] < y0 + 9 * cell);
    for (int gy = 0; clear && gy < 7; ++gy)
      for (int gx = 0; gx < 5; ++gx)
        if (glyph[gy] & (0x10 >> gx))
          for (int yy = 0; yy < cell; ++yy)
            for (int xx = 0; xx < cell; ++xx) img.at(x0 + gx * cell + xx, y0 + gy * cell + yy) = 0.98f;
  }
  synth::gaussian_blur(img, rng.uniform(0.3, 1.4));
  // Collimation: shutters cut into 1–4 sides, never over a landmark; the shadow is bright.
  if (rng.bernoulli(0.5)) {
    double bx0 = 1e30, by0 = 1e30, bx1 = -1e30, by1 = -1e30;
    for (const Vec2& p : pts_px) bx0 = std::min(bx0, p[0]), by0 = std::min(by0, p[1]), bx1 = std::max(bx1, p[0]), by1 = std::max(by1, p[1]);
    double pad = 0.04 * n;
    double cut[4] = {0, 0, 0, 0};  // left, top, right, bottom
    double room[4] = {bx0 - pad, by0 - pad, n - 1 - bx1 - pad, n - 1 - by1 - pad};
    for (int s = 0; s < 4; ++s)
      if (rng.bernoulli(0.6) && room[s] > 0) cut[s] = rng.uniform(0.0, std::min(room[s], 0.15 * n));
    float shade = float(rng.uniform(0.75, 0.98));
    double tilt = rng.normal(0.0, 0.02);
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        double xs = x + tilt * (y - 0.5 * n), ys = y - tilt * (x - 0.5 * n);
        if (xs < cut[0] || ys < cut[1] || xs > n - 1 - cut[2] || ys > n - 1 - cut[3]) img.at(x, y) = shade;
      }
  }
  // Noise: quantum (∝ √I) plus electronic, approximately normal from a sum of two uniforms.
  double q = rng.uniform(0.004, 0.03), e = rng.uniform(0.001, 0.006);
  for (float& v : img.data) {
    uint32_t r = rng.next_u32();
    double z = ((r & 0xFFFF) + (r >> 16)) * (1.0 / 65536.0) - 1.0;  // triangular on (-1, 1), var 1/6
    v = float(std::clamp(v + (q * std::sqrt(std::max(0.f, v)) + e) * 2.449 * z, 0.0, 1.0));
  }
}

}  // namespace

SynthSample synth_generate(const Schema& schema, uint64_t seed, uint64_t index, const SynthOptions& options) {
  SM_CHECK(options.size >= 64 && options.size <= 8192, "synth: --size must be in [64, 8192], got " << options.size);
  Rng rng = Rng(seed).derive("synth", index);
  Rng anatomy = rng.derive("anatomy"), render = rng.derive("render"), film = rng.derive("film");
  synth::SpineGeometry g = synth::spine_sample(anatomy);

  // Landmarks by name in the patient frame.
  auto corner_mm = [&](const std::string& name) -> std::optional<Vec2> {
    auto dot = name.find('.');
    std::string vert = name.substr(0, dot), corner = name.substr(dot + 1);
    if (vert == "S1") {
      if (corner == "sup_ant") return g.s1_sup_ant;
      if (corner == "sup_post") return g.s1_sup_post;
      return std::nullopt;
    }
    for (const auto& v : g.vertebrae)
      if (v.name == vert)
        for (int c = 0; c < 4; ++c)
          if (corner == kCorners[c]) return v.corners[size_t(c)];
    return std::nullopt;
  };
  std::vector<Vec2> pts_mm;
  for (const std::string& name : schema.landmarks) {
    auto p = corner_mm(name);
    SM_CHECK(p, "synth: schema '" << schema.name << "' has landmark '" << name
                                  << "', which the lateral lumbar generator does not make (use lumbar-lateral)");
    pts_mm.push_back(*p);
  }

  const int n = options.size;
  synth::Similarity T = framing_sample(pts_mm, n, render);
  Image density(n, n);
  Image fine = texture_make(n, render, std::max(0.7, 0.5 * T.scale));  // ~1 mm trabecular grain
  synth::scene_draw(density, fine, g, T, render);
  std::vector<Vec2> pts_px;
  for (const Vec2& p : pts_mm) pts_px.push_back(T.apply(p));
  film_simulate(density, pts_px, film);

  SynthSample out;
  out.image = std::move(density);
  for (float& v : out.image.data) v = std::nearbyint(v * 65535.f);  // as stored in the 16-bit PNG
  out.image.bits = 16;
  out.image.format = "synthetic";
  out.image.pixel_spacing_mm = std::array<double, 2>{1.0 / T.scale, 1.0 / T.scale};
  Annotation& a = out.annotation;
  a.schema = schema.name;
  a.pixel_spacing_mm = out.image.pixel_spacing_mm;
  for (const Vec2& p : pts_px) a.points.push_back({p[0], p[1]});
  a.visible.assign(a.points.size(), true);
  nlohmann::json heads = nlohmann::json::array(), radii = nlohmann::json::array();
  for (int i = 0; i < 2; ++i) {
    Vec2 h = T.apply(g.femoral_head[size_t(i)]);
    heads.push_back({h[0], h[1]});
    radii.push_back(g.femoral_radius[size_t(i)] * T.scale);
  }
  a.extra["femoral_head_centres"] = heads;  // [x, y] of both heads (pelvic incidence/tilt later)
  a.extra["femoral_head_radii_px"] = radii;
  a.extra["synthetic"] = {{"seed", seed},
                          {"index", index},
                          {"facing", T.flip ? "left" : "right"},
                          {"rotation_deg", T.angle * 180.0 / M_PI},
                          {"pixel_scale_px_per_mm", T.scale},
                          {"pathology", g.pathology},
                          {"sampled_lordosis_deg", g.lordosis_deg},
                          {"sampled_sacral_slope_deg", g.sacral_slope_deg},
                          {"pelvic_tilt_deg", g.pelvic_tilt_deg}};
  return out;
}

void synth_write(const std::string& dir, const std::string& stem, const SynthSample& sample, const Schema& schema, int bits) {
  SM_CHECK(bits == 8 || bits == 16, "synth: bits must be 8 or 16, got " << bits);
  Annotation a = sample.annotation;
  a.image = stem + ".png";
  image_write_png(dir + "/" + stem + ".png", sample.image, {bits, 0.f, 65535.f});
  annotation_write(dir + "/" + stem + ".json", a, schema);
}

}  // namespace sm
