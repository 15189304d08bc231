// Soft-edged shape rasterisation (see raster.h). Each shape loops over its bounding box only and
// turns a signed distance d (pixels, > 0 inside) into coverage clamp(d / edge + 0.5, 0, 1).
#include "train/synth/raster.h"

#include <algorithm>
#include <cmath>

namespace sm::synth {

namespace {

struct Box {
  int x0, y0, x1, y1;  // inclusive
  bool empty() const { return x0 > x1 || y0 > y1; }
};

Box box_clip(const Image& c, double xmin, double ymin, double xmax, double ymax, double pad) {
  auto lo = [](double v, int n) { return std::clamp(int(std::floor(v)), 0, n); };
  return {lo(xmin - pad, c.width), lo(ymin - pad, c.height), std::min(lo(xmax + pad, c.width), c.width - 1),
          std::min(lo(ymax + pad, c.height), c.height - 1)};
}

// density at a point d pixels inside the edge (d may be negative: outside)
inline float fill_value(const Fill& f, double d, int x, int y, int width) {
  double cov = std::clamp(d / f.edge_px + 0.5, 0.0, 1.0);
  if (cov <= 0.0) return 0.f;
  float v = f.density;
  if (f.texture != 0.f && f.tex) v *= 1.f + f.texture * f.tex->data[size_t(y) * size_t(width) + size_t(x)];
  if (f.rim != 0.f) v += f.rim * float(std::clamp(1.0 - (d - f.rim_px) / 1.5, 0.0, 1.0));
  return float(cov) * v;
}

}  // namespace

void polygon_add(Image& canvas, const std::vector<Vec2>& pts, const Fill& fill, const std::vector<double>& bulge) {
  const size_t n = pts.size();
  if (n < 3) return;
  double area = 0;
  for (size_t i = 0; i < n; ++i) area += pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1];
  const double orient = area > 0 ? 1.0 : -1.0;
  // Edge i: inward unit normal (nx, ny), so d_i(p) = n . (p - a_i); t along the edge for the bulge.
  std::vector<std::array<double, 6>> e(n);  // nx, ny, c, ux, uy, len
  double xmin = 1e30, ymin = 1e30, xmax = -1e30, ymax = -1e30;
  for (size_t i = 0; i < n; ++i) {
    Vec2 a = pts[i], b = pts[(i + 1) % n];
    double dx = b[0] - a[0], dy = b[1] - a[1], len = std::max(1e-9, std::hypot(dx, dy));
    double nx = -dy / len * orient, ny = dx / len * orient;
    e[i] = {nx, ny, -(nx * a[0] + ny * a[1]), dx / len, dy / len, len};
    xmin = std::min(xmin, a[0]), xmax = std::max(xmax, a[0]), ymin = std::min(ymin, a[1]), ymax = std::max(ymax, a[1]);
  }
  Box b = box_clip(canvas, xmin, ymin, xmax, ymax, fill.edge_px + 1);
  for (int y = b.y0; y <= b.y1; ++y)
    for (int x = b.x0; x <= b.x1; ++x) {
      double d = 1e30;
      for (size_t i = 0; i < n; ++i) {
        double di = e[i][0] * x + e[i][1] * y + e[i][2];
        if (i < bulge.size() && bulge[i] != 0.0) {
          double t = std::clamp(((x - pts[i][0]) * e[i][3] + (y - pts[i][1]) * e[i][4]) / e[i][5], 0.0, 1.0);
          di -= bulge[i] * 4.0 * t * (1.0 - t);
        }
        d = std::min(d, di);
      }
      if (d > -fill.edge_px) canvas.data[size_t(y) * size_t(canvas.width) + size_t(x)] += fill_value(fill, d, x, y, canvas.width);
    }
}

void ellipse_add(Image& canvas, Vec2 c, double rx, double ry, double angle, const Fill& fill) {
  double r = std::max(rx, ry), ca = std::cos(angle), sa = std::sin(angle), rmin = std::min(rx, ry);
  Box b = box_clip(canvas, c[0] - r, c[1] - r, c[0] + r, c[1] + r, fill.edge_px + 1);
  for (int y = b.y0; y <= b.y1; ++y)
    for (int x = b.x0; x <= b.x1; ++x) {
      double dx = x - c[0], dy = y - c[1];
      double u = (ca * dx + sa * dy) / rx, v = (-sa * dx + ca * dy) / ry;
      double d = (1.0 - std::sqrt(u * u + v * v)) * rmin;
      if (d > -fill.edge_px) canvas.data[size_t(y) * size_t(canvas.width) + size_t(x)] += fill_value(fill, d, x, y, canvas.width);
    }
}

void arc_add(Image& canvas, Vec2 c, double r, double hw, double a0, double a1, const Fill& fill) {
  double R = r + hw;
  Box b = box_clip(canvas, c[0] - R, c[1] - R, c[0] + R, c[1] + R, fill.edge_px + 1);
  double mid = 0.5 * (a0 + a1), half = 0.5 * std::abs(a1 - a0);
  for (int y = b.y0; y <= b.y1; ++y)
    for (int x = b.x0; x <= b.x1; ++x) {
      double dx = x - c[0], dy = y - c[1], rho = std::hypot(dx, dy);
      double d = hw - std::abs(rho - r);
      if (d <= -fill.edge_px) continue;
      double da = std::remainder(std::atan2(dy, dx) - mid, 2 * M_PI);
      d = std::min(d, (half - std::abs(da)) * rho);  // soft ends, in pixels along the arc
      if (d > -fill.edge_px) canvas.data[size_t(y) * size_t(canvas.width) + size_t(x)] += fill_value(fill, d, x, y, canvas.width);
    }
}

void capsule_add(Image& canvas, Vec2 a, Vec2 b2, double rad, const Fill& fill) {
  Box b = box_clip(canvas, std::min(a[0], b2[0]) - rad, std::min(a[1], b2[1]) - rad, std::max(a[0], b2[0]) + rad,
                   std::max(a[1], b2[1]) + rad, fill.edge_px + 1);
  double vx = b2[0] - a[0], vy = b2[1] - a[1], vv = std::max(1e-12, vx * vx + vy * vy);
  for (int y = b.y0; y <= b.y1; ++y)
    for (int x = b.x0; x <= b.x1; ++x) {
      double t = std::clamp(((x - a[0]) * vx + (y - a[1]) * vy) / vv, 0.0, 1.0);
      double d = rad - std::hypot(x - a[0] - t * vx, y - a[1] - t * vy);
      if (d > -fill.edge_px) canvas.data[size_t(y) * size_t(canvas.width) + size_t(x)] += fill_value(fill, d, x, y, canvas.width);
    }
}

void gaussian_blur(Image& img, double sigma) {
  if (sigma <= 0.05 || img.empty()) return;
  int r = std::max(1, int(std::ceil(3.0 * sigma)));
  std::vector<float> k(size_t(2 * r + 1));
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[size_t(i + r)] = float(std::exp(-0.5 * i * i / (sigma * sigma)));
  for (float& v : k) v = float(v / sum);
  const int w = img.width, h = img.height;
  std::vector<float> tmp(img.data.size()), line;
  for (int y = 0; y < h; ++y) {  // horizontal pass
    const float* src = &img.data[size_t(y) * size_t(w)];
    float* dst = &tmp[size_t(y) * size_t(w)];
    for (int x = 0; x < w; ++x) {
      float s = 0;
      for (int i = -r; i <= r; ++i) s += k[size_t(i + r)] * src[std::clamp(x + i, 0, w - 1)];
      dst[x] = s;
    }
  }
  for (int y = 0; y < h; ++y) {  // vertical pass, row-wise for cache friendliness
    float* dst = &img.data[size_t(y) * size_t(w)];
    std::fill(dst, dst + w, 0.f);
    for (int i = -r; i <= r; ++i) {
      const float* src = &tmp[size_t(std::clamp(y + i, 0, h - 1)) * size_t(w)];
      const float kk = k[size_t(i + r)];
      for (int x = 0; x < w; ++x) dst[x] += kk * src[x];
    }
  }
}

}  // namespace sm::synth
