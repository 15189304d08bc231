// A small RGB canvas for tools that show images, heatmaps and predicted landmarks: grayscale or
// heatmap backgrounds, points, crosses and lines drawn with plain integer rasterisation, PNG output.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "models/image/image.h"

namespace sm {

using Rgb = std::array<uint8_t, 3>;

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // (height, width, 3)

  RgbImage() = default;
  RgbImage(int w, int h, Rgb fill = {0, 0, 0});
  void pixel_set(int x, int y, Rgb c);  // ignores pixels outside the canvas
  // Blends c over the pixel with opacity alpha in [0, 1].
  void pixel_blend(int x, int y, Rgb c, float alpha);
};

// Grayscale background; the window lo..hi maps to 0..255 (lo >= hi: 1st..99th percentile).
RgbImage overlay_from_gray(const Image& image, float lo = 0.f, float hi = 0.f);
// Blends a heatmap (any size; stretched over the canvas with nearest sampling, normalised by its
// max) in a black-red-yellow colour map with opacity alpha * value.
void overlay_heatmap_blend(RgbImage& canvas, const Image& heatmap, float alpha = 0.6f);
// Coordinates follow method.md §2: pixel centres at integers.
void overlay_point_draw(RgbImage& canvas, double x, double y, int radius, Rgb c);  // filled disc
void overlay_cross_draw(RgbImage& canvas, double x, double y, int half, Rgb c);    // diagonal cross
void overlay_line_draw(RgbImage& canvas, double x0, double y0, double x1, double y1, Rgb c);
// Writes an 8-bit RGB PNG atomically.
void overlay_write_png(const std::string& path, const RgbImage& canvas);

}  // namespace sm
