// Bilinear image sampling (see sampling.h for the pixel convention).
#include "models/image/sampling.h"

#include <algorithm>
#include <cmath>

namespace sm {

float image_sample_bilinear(const Image& image, double x, double y, float pad) {
  const int W = image.width, H = image.height;
  if (!(x >= -0.5 && x <= W - 0.5 && y >= -0.5 && y <= H - 0.5)) return pad;  // also catches NaN
  // Clamp to the span of pixel centres: edge pixels extend over the half-pixel border.
  x = std::min(std::max(x, 0.0), double(W - 1));
  y = std::min(std::max(y, 0.0), double(H - 1));
  const int x0 = std::min(int(x), W - 2 < 0 ? 0 : W - 2), y0 = std::min(int(y), H - 2 < 0 ? 0 : H - 2);
  const int x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
  const double fx = x - x0, fy = y - y0;
  const double top = (1 - fx) * image.at(x0, y0) + fx * image.at(x1, y0);
  const double bottom = (1 - fx) * image.at(x0, y1) + fx * image.at(x1, y1);
  return float((1 - fy) * top + fy * bottom);
}

}  // namespace sm
