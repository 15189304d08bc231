// RGB overlay canvas (see overlay.h): nearest-pixel drawing, Bresenham lines, PNG via png_encode.
#include "models/image/overlay.h"

#include <algorithm>
#include <cmath>

#include "models/image/image_io.h"
#include "tensor/check.h"
#include "tensor/file_io.h"

namespace sm {

RgbImage::RgbImage(int w, int h, Rgb fill) : width(w), height(h), rgb(size_t(w) * size_t(h) * 3) {
  for (size_t i = 0; i < rgb.size(); i += 3) std::copy(fill.begin(), fill.end(), rgb.begin() + long(i));
}

void RgbImage::pixel_set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  std::copy(c.begin(), c.end(), rgb.begin() + long((size_t(y) * size_t(width) + size_t(x)) * 3));
}

void RgbImage::pixel_blend(int x, int y, Rgb c, float alpha) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  alpha = std::clamp(alpha, 0.f, 1.f);
  uint8_t* p = &rgb[(size_t(y) * size_t(width) + size_t(x)) * 3];
  for (int k = 0; k < 3; ++k) p[k] = uint8_t(std::lround(p[k] * (1.f - alpha) + c[size_t(k)] * alpha));
}

RgbImage overlay_from_gray(const Image& image, float lo, float hi) {
  SM_CHECK(!image.empty(), "overlay_from_gray: empty image");
  if (!(lo < hi)) {
    std::vector<float> v = image.data;
    size_t a = v.size() / 100, b = v.size() - 1 - v.size() / 100;
    std::nth_element(v.begin(), v.begin() + long(a), v.end());
    lo = v[a];
    std::nth_element(v.begin(), v.begin() + long(b), v.end());
    hi = std::max(v[b], lo + 1e-6f);
  }
  RgbImage out(image.width, image.height);
  for (size_t i = 0; i < image.data.size(); ++i) {
    float g = std::clamp((image.data[i] - lo) / (hi - lo), 0.f, 1.f) * 255.f;
    out.rgb[3 * i] = out.rgb[3 * i + 1] = out.rgb[3 * i + 2] = uint8_t(std::lround(g));
  }
  return out;
}

void overlay_heatmap_blend(RgbImage& canvas, const Image& heatmap, float alpha) {
  SM_CHECK(!heatmap.empty(), "overlay_heatmap_blend: empty heatmap");
  float mx = *std::max_element(heatmap.data.begin(), heatmap.data.end());
  if (!(mx > 0.f)) return;
  for (int y = 0; y < canvas.height; ++y)
    for (int x = 0; x < canvas.width; ++x) {
      int hx = std::min(heatmap.width - 1, int(int64_t(x) * heatmap.width / canvas.width));
      int hy = std::min(heatmap.height - 1, int(int64_t(y) * heatmap.height / canvas.height));
      float v = std::clamp(heatmap.at(hx, hy) / mx, 0.f, 1.f);
      // black -> red -> yellow: r rises over [0, 0.5], g over [0.5, 1]
      Rgb c{uint8_t(std::lround(255.f * std::min(1.f, 2.f * v))), uint8_t(std::lround(255.f * std::max(0.f, 2.f * v - 1.f))), 0};
      canvas.pixel_blend(x, y, c, alpha * v);
    }
}

void overlay_point_draw(RgbImage& canvas, double x, double y, int radius, Rgb c) {
  if (!std::isfinite(x) || !std::isfinite(y)) return;
  int cx = int(std::lround(x)), cy = int(std::lround(y));
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx)
      if (dx * dx + dy * dy <= radius * radius) canvas.pixel_set(cx + dx, cy + dy, c);
}

void overlay_cross_draw(RgbImage& canvas, double x, double y, int half, Rgb c) {
  overlay_line_draw(canvas, x - half, y - half, x + half, y + half, c);
  overlay_line_draw(canvas, x - half, y + half, x + half, y - half, c);
}

void overlay_line_draw(RgbImage& canvas, double x0, double y0, double x1, double y1, Rgb c) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
  // Bresenham on the rounded end points, clamped so that far-away points cannot loop for long.
  auto clampc = [](double v) { return int(std::lround(std::clamp(v, -1e5, 1e5))); };
  int ax = clampc(x0), ay = clampc(y0), bx = clampc(x1), by = clampc(y1);
  int dx = std::abs(bx - ax), dy = -std::abs(by - ay), sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    canvas.pixel_set(ax, ay, c);
    if (ax == bx && ay == by) break;
    int e2 = 2 * err;
    if (e2 >= dy) { err += dy; ax += sx; }
    if (e2 <= dx) { err += dx; ay += sy; }
  }
}

void overlay_write_png(const std::string& path, const RgbImage& canvas) {
  SM_CHECK(canvas.width > 0 && canvas.height > 0, "overlay_write_png: '" << path << "': empty canvas");
  file_write_atomic(path, png_encode(canvas.rgb.data(), canvas.width, canvas.height, 3, 8));
}

}  // namespace sm
