// Augmentation (see augment.h). The geometric part is one similarity composed from the pieces
// around the image centre c: p' = c + t + s R(φ) F (p - c), then the framing crop
// p'' = c + (p' - w)/f (window centre w, fraction f), so image and landmarks share one matrix.
#include "train/data/augment.h"

#include <algorithm>
#include <cmath>

#include "tensor/check.h"
#include "train/synth/raster.h"

namespace sm {

Rng augment_rng(uint64_t seed, uint64_t epoch, uint64_t sample) {
  uint64_t h = hash_mix(seed ^ 0x6175676d656e74ULL);  // "augment"
  h = hash_mix(h ^ hash_mix(epoch + 0x9E3779B97F4A7C15ULL));
  h = hash_mix(h ^ hash_mix(sample + 0x3C6EF372FE94F82AULL));
  return Rng(h, 0);
}

Point2 affine_apply(const Affine& A, Point2 p) {
  return {A[0] * p[0] + A[1] * p[1] + A[2], A[3] * p[0] + A[4] * p[1] + A[5]};
}

Image image_warp_affine(const Image& in, const Affine& A, int out_w, int out_h, float fill) {
  double det = A[0] * A[4] - A[1] * A[3];
  SM_CHECK(std::abs(det) > 1e-12, "image_warp_affine: singular transform");
  // inverse of [a b; d e] plus translation
  double ia = A[4] / det, ib = -A[1] / det, id = -A[3] / det, ie = A[0] / det;
  double ic = -(ia * A[2] + ib * A[5]), ifo = -(id * A[2] + ie * A[5]);
  Image out(out_w, out_h, fill);
  out.bits = in.bits;
  out.format = in.format;
  out.pixel_spacing_mm = in.pixel_spacing_mm;
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x) {
      double sx = ia * x + ib * y + ic, sy = id * x + ie * y + ifo;
      if (sx < -0.5 || sy < -0.5 || sx > in.width - 0.5 || sy > in.height - 0.5) continue;
      // clamp to the border pixel centres inside the image's extent [-0.5, W-0.5]
      sx = std::clamp(sx, 0.0, double(in.width - 1)), sy = std::clamp(sy, 0.0, double(in.height - 1));
      int x0 = std::min(int(sx), in.width - 2 < 0 ? 0 : in.width - 2), y0 = std::min(int(sy), in.height - 2 < 0 ? 0 : in.height - 2);
      int x1 = std::min(x0 + 1, in.width - 1), y1 = std::min(y0 + 1, in.height - 1);
      double fx = sx - x0, fy = sy - y0;
      double v = (1 - fy) * ((1 - fx) * in.at(x0, y0) + fx * in.at(x1, y0)) + fy * ((1 - fx) * in.at(x0, y1) + fx * in.at(x1, y1));
      out.at(x, y) = float(v);
    }
  return out;
}

namespace {

Affine geometry_sample(int w, int h, const AugmentOptions& o, Rng& rng, bool& flipped) {
  const double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
  double phi = rng.uniform(-o.rotate_deg, o.rotate_deg) * M_PI / 180.0;
  double s = rng.uniform(o.scale_min, o.scale_max);
  double tx = rng.uniform(-o.translate, o.translate) * w, ty = rng.uniform(-o.translate, o.translate) * h;
  flipped = rng.bernoulli(o.flip_prob);
  double f = 1.0, wx = cx, wy = cy;  // framing crop: window fraction f centred at (wx, wy)
  if (rng.bernoulli(o.crop_prob)) {
    f = rng.uniform(o.crop_min, 1.0);
    wx = cx + rng.uniform(-0.5, 0.5) * (1 - f) * w;
    wy = cy + rng.uniform(-0.5, 0.5) * (1 - f) * h;
  }
  double F = flipped ? -1.0 : 1.0, c = std::cos(phi), sn = std::sin(phi);
  // M = s R F: [[s c F, -s sn], [s sn F, s c]]
  double a = s * c * F, b = -s * sn, d = s * sn * F, e = s * c;
  // p' = c + t + M (p - c);  p'' = c + (p' - w) / f
  double ox = cx + tx - (a * cx + b * cy), oy = cy + ty - (d * cx + e * cy);
  return {a / f, b / f, (ox - wx) / f + cx, d / f, e / f, (oy - wy) / f + cy};
}

void intensity_apply(Image& img, const AugmentOptions& o, Rng& rng) {
  auto mm = std::minmax_element(img.data.begin(), img.data.end());
  float lo = *mm.first, hi = *mm.second;
  if (!(hi > lo)) return;
  double contrast = rng.uniform(1 - o.contrast, 1 + o.contrast), bright = rng.uniform(-0.5, 0.5) * o.contrast;
  double gamma = rng.uniform(o.gamma_min, o.gamma_max), sigma = rng.uniform(0.0, o.blur_max);
  double noise = rng.uniform(0.0, o.noise_max);
  for (float& v : img.data) {
    double x = (v - lo) / (hi - lo);
    x = std::clamp((x - 0.5) * contrast + 0.5 + bright, 0.0, 1.0);  // clipping keeps it from cancelling
    v = float(std::pow(x, gamma));
  }
  synth::gaussian_blur(img, sigma);
  if (noise > 0)
    for (float& v : img.data) v = float(std::clamp(v + noise * rng.normal(), 0.0, 1.0));
  for (float& v : img.data) v = lo + v * (hi - lo);
}

}  // namespace

Augmented augment_apply(const Image& image, const std::vector<Point2>& points, const std::vector<bool>& visible,
                        const Schema& schema, const AugmentOptions& options, uint64_t seed, uint64_t epoch,
                        uint64_t sample) {
  const size_t L = size_t(schema.landmark_count());
  SM_CHECK(points.size() == L, "augment: " << points.size() << " points for schema '" << schema.name << "' with " << L);
  SM_CHECK(visible.empty() || visible.size() == L, "augment: visible has " << visible.size() << " entries, expected " << L);
  SM_CHECK(!image.empty(), "augment: empty image");
  Rng rng = augment_rng(seed, epoch, sample);
  Rng geo = rng.derive("geometry"), inten = rng.derive("intensity");
  Augmented out;
  out.transform = {1, 0, 0, 0, 1, 0};
  if (options.geometric) {
    out.transform = geometry_sample(image.width, image.height, options, geo, out.flipped);
    if (options.keep_in_frame) {
      // Landmarks the draw pushes out of the image (of those visible before it).
      auto lost = [&](const Affine& A) {
        int n = 0;
        for (size_t i = 0; i < L; ++i) {
          if (!(visible.empty() || visible[i]) || !std::isfinite(points[i][0]) || !std::isfinite(points[i][1])) continue;
          const Point2 p = affine_apply(A, points[i]);
          n += !(p[0] >= -0.5 && p[1] >= -0.5 && p[0] <= image.width - 0.5 && p[1] <= image.height - 0.5);
        }
        return n;
      };
      int best = lost(out.transform);
      for (int draw = 1; draw < 10 && best > 0; ++draw) {
        bool flipped = false;
        const Affine A = geometry_sample(image.width, image.height, options, geo, flipped);
        const int n = lost(A);
        if (n < best) best = n, out.transform = A, out.flipped = flipped;
      }
    }
  }
  float fill = *std::min_element(image.data.begin(), image.data.end());
  out.image = options.geometric ? image_warp_affine(image, out.transform, image.width, image.height, fill) : image;
  out.points.assign(L, {NAN, NAN});
  out.visible.assign(L, false);
  for (size_t i = 0; i < L; ++i) {
    // after a flip, the point that was landmark i carries label flip_permutation[i]
    size_t j = out.flipped && schema.flip_permutation.size() == L ? size_t(schema.flip_permutation[i]) : i;
    Point2 p = affine_apply(out.transform, points[i]);
    bool vis = (visible.empty() || visible[i]) && std::isfinite(p[0]) && std::isfinite(p[1]);
    vis = vis && p[0] >= -0.5 && p[1] >= -0.5 && p[0] <= image.width - 0.5 && p[1] <= image.height - 0.5;
    out.points[j] = p;
    out.visible[j] = vis;
  }
  if (options.intensity) intensity_apply(out.image, options, inten);
  return out;
}

}  // namespace sm
