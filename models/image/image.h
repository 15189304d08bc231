// A single-channel image in memory: what image/DICOM readers produce and what the geometry,
// augmentation and synthetic generator work on. Row-major, pixel (x, y) at data[y*width + x];
// pixel centres at integer coordinates (method.md §2).
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

namespace sm {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<float> data;  // (height, width) intensities as stored (0..255, 0..65535, DICOM values)
  int bits = 8;             // bits per sample of the source
  std::string format;       // "png", "jpeg", "bmp", "pgm", "dicom", "synthetic", ...
  std::optional<std::array<double, 2>> pixel_spacing_mm;  // (row, col) spacing when known

  Image() = default;
  Image(int w, int h, float value = 0.f) : width(w), height(h), data(size_t(w) * size_t(h), value) {}
  float& at(int x, int y) { return data[size_t(y) * size_t(width) + size_t(x)]; }
  float at(int x, int y) const { return data[size_t(y) * size_t(width) + size_t(x)]; }
  bool empty() const { return width <= 0 || height <= 0; }
};

}  // namespace sm
