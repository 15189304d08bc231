// Vertebra crops: the similarity transform of method.md §5 and its inverse, sampling, crop
// parameters from corners and jitter (see crop.h).
#include "models/geometry/crop.h"

#include <algorithm>
#include <cmath>

#include "models/image/sampling.h"
#include "tensor/check.h"
#include "tensor/kernels/context.h"

namespace sm {

namespace {

// crop_to_image as a map with its scale and rotation evaluated once: crop_sample applies it up to
// 64 times per crop pixel, and a sin/cos pair per sample was a third of a crop's time.
struct CropToImage {
  double k, u0, c, s, cx, cy;
  explicit CropToImage(const CropParams& crop)
      : k(crop.side / crop.size), u0(0.5 * (crop.size - 1)), c(std::cos(crop.angle)), s(std::sin(crop.angle)),
        cx(crop.centre[0]), cy(crop.centre[1]) {}
  Point2 operator()(const Point2& u) const {
    const double a = u[0] - u0, b = u[1] - u0;
    return {cx + k * (c * a - s * b), cy + k * (s * a + c * b)};
  }
};

}  // namespace

Point2 crop_to_image(const CropParams& crop, const Point2& u) { return CropToImage(crop)(u); }

Point2 crop_from_image(const CropParams& crop, const Point2& p) {
  const double k = crop.size / crop.side, u0 = 0.5 * (crop.size - 1);
  const double c = std::cos(crop.angle), s = std::sin(crop.angle);
  const double a = p[0] - crop.centre[0], b = p[1] - crop.centre[1];
  // R(−θ) = Rᵀ(θ) = [[cos, sin], [−sin, cos]].
  return {u0 + k * (c * a + s * b), u0 + k * (-s * a + c * b)};
}

Image crop_sample(const Image& image, const CropParams& crop, float pad, bool antialias) {
  SM_CHECK(!image.empty(), "crop_sample: empty image");
  SM_CHECK(crop.size > 0 && crop.side > 0 && std::isfinite(crop.side) && std::isfinite(crop.angle) &&
               std::isfinite(crop.centre[0]) && std::isfinite(crop.centre[1]),
           "crop_sample: bad crop (size " << crop.size << ", side " << crop.side << ")");
  const double ratio = crop.side / crop.size;
  const int k = antialias && ratio > 1.0 ? std::min(8, int(std::ceil(ratio - 1e-9))) : 1;
  Image out(crop.size, crop.size, pad);
  out.bits = image.bits;
  out.format = image.format;
  out.pixel_spacing_mm.reset();
  // Rows are independent: split over the kernel threads.
  const CropToImage to_image(crop);
  const int threads = exec_context().threads_or_default();
#pragma omp parallel for num_threads(threads) schedule(static) if (int64_t(crop.size) * crop.size * k * k > 20000)
  for (int y = 0; y < crop.size; ++y)
    for (int x = 0; x < crop.size; ++x) {
      double sum = 0;
      // k × k sub-samples, symmetric about the pixel centre.
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i) {
          const Point2 p = to_image(Point2{x + (i + 0.5) / k - 0.5, y + (j + 0.5) / k - 0.5});
          sum += image_sample_bilinear(image, p[0], p[1], pad);
        }
      out.at(x, y) = float(sum / (k * k));
    }
  return out;
}

namespace {

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
double length(const Point2& a, const Point2& b) { return std::hypot(b[0] - a[0], b[1] - a[1]); }

// Mean vector length of the schema segments (endplates or walls) this vertebra has; 0 if none.
double segments_mean_length(const Schema& schema, const std::vector<Point2>& pts, int v,
                            const std::vector<SegmentSpec>& segs) {
  double sum = 0;
  int n = 0;
  for (const auto& seg : segs) {
    auto ab = schema.segment_landmarks(v, seg);
    if (ab[0] < 0) continue;
    sum += length(pts[size_t(ab[0])], pts[size_t(ab[1])]);
    ++n;
  }
  return n ? sum / n : 0.0;
}

Point2 segment_mid(const Point2& a, const Point2& b) { return {0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])}; }

}  // namespace

VertebraFrame vertebra_frame(const Schema& schema, const std::vector<Point2>& pts, int v) {
  SM_CHECK(int(pts.size()) == schema.landmark_count(),
           "vertebra_frame: " << pts.size() << " points for schema '" << schema.name << "' ("
                              << schema.landmark_count() << ")");
  VertebraFrame f;
  const auto idx = schema.vertebra_landmarks(v);
  for (int i : idx)
    if (!finite2(pts[size_t(i)])) return f;
  for (int i : idx) {
    f.centre[0] += pts[size_t(i)][0] / idx.size();
    f.centre[1] += pts[size_t(i)][1] / idx.size();
  }
  // Mean direction of the endplates: sum of unit vectors.
  double dx = 0, dy = 0;
  std::vector<Point2> mids;  // endplate midpoints, cranial first
  for (const auto& seg : schema.endplates) {
    auto ab = schema.segment_landmarks(v, seg);
    if (ab[0] < 0) continue;
    const Point2 &a = pts[size_t(ab[0])], &b = pts[size_t(ab[1])];
    const double len = length(a, b);
    if (len > 0) dx += (b[0] - a[0]) / len, dy += (b[1] - a[1]) / len;
    mids.push_back(segment_mid(a, b));
  }
  if (dx == 0 && dy == 0) return f;
  f.angle = std::atan2(dy, dx);
  // Caudal direction: cranial endplate -> caudal endplate; with one endplate, away from the
  // nearest cranial vertebra's centre. The crop's +y axis (−sin θ, cos θ) must point caudally.
  Point2 caudal{0, 0};
  if (mids.size() >= 2) {
    caudal = {mids.back()[0] - mids.front()[0], mids.back()[1] - mids.front()[1]};
  } else {
    for (int w = v - 1; w >= 0; --w) {
      VertebraFrame up = vertebra_frame(schema, pts, w);
      if (!up.valid) continue;
      caudal = {f.centre[0] - up.centre[0], f.centre[1] - up.centre[1]};
      break;
    }
  }
  if (-std::sin(f.angle) * caudal[0] + std::cos(f.angle) * caudal[1] < 0)
    f.angle = std::atan2(-dy, -dx);
  f.width = segments_mean_length(schema, pts, v, schema.endplates);
  f.height = segments_mean_length(schema, pts, v, schema.walls);
  if (f.height == 0) {
    // No walls (S1): take the nearest cranial vertebra's size, as method.md §5 says for S1.
    for (int w = v - 1; w >= 0; --w) {
      VertebraFrame up = vertebra_frame(schema, pts, w);
      if (!up.valid || up.height == 0) continue;
      f.width = f.height = std::max(up.width, up.height);
      break;
    }
    if (f.height == 0) f.height = f.width;
  }
  f.valid = f.width > 0;
  return f;
}

CropParams crop_params_from_vertebra(const Schema& schema, const std::vector<Point2>& points, int vertebra,
                                     int size, double margin) {
  SM_CHECK(size > 0 && margin >= 0, "crop: size must be > 0 and margin >= 0");
  const VertebraFrame f = vertebra_frame(schema, points, vertebra);
  SM_CHECK(f.valid, "crop: vertebra '" << schema.vertebrae.at(size_t(vertebra)).name
                                       << "' lacks corners (or they coincide); cannot place a crop");
  CropParams c;
  c.centre = f.centre;
  c.angle = f.angle;
  c.side = (1 + 2 * margin) * std::max(f.width, f.height);
  c.size = size;
  return c;
}

CropParams crop_jitter(const CropParams& crop, const CropJitter& j, const std::function<double()>& draw) {
  SM_CHECK(bool(draw), "crop_jitter: no random source given");
  auto one = [&]() { return j.uniform ? 2.0 * draw() - 1.0 : draw(); };
  CropParams c = crop;
  const double shift = j.centre_px + j.centre_frac * crop.side;
  const double nx = one(), ny = one(), na = one(), ns = one();
  c.centre[0] += shift * nx;
  c.centre[1] += shift * ny;
  c.angle += j.angle_deg * M_PI / 180.0 * na;
  c.side *= std::exp(j.scale_log * ns);
  return c;
}

}  // namespace sm
