// Bilinear sampling of an sm::Image at sub-pixel positions, in the pixel convention of method.md
// §2: pixel (i, j) has its centre at (x = j, y = i); the image covers [-0.5, W-0.5] × [-0.5, H-0.5].
#pragma once
#include "models/image/image.h"

namespace sm {

// Value at (x, y): bilinear between the four nearest pixel centres. Inside the image's area but
// beyond the outermost centres (the half-pixel border) the edge pixels are extended, so the
// image keeps a sharp edge; outside the area the result is `pad`.
// Requires a non-empty image.
float image_sample_bilinear(const Image& image, double x, double y, float pad);

}  // namespace sm
