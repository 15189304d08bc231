// Letterbox (method.md §5): fit an image into the network input by one aspect-preserving scale
// and centred padding (our choice: centred), never stretching; map points both ways exactly.
#pragma once
#include "models/geometry/annotation.h"
#include "models/image/image.h"

namespace sm {

// Edge coordinates e = p + 0.5 run over [0, W] for the pixel convention of method.md §2.
// The letterbox maps them by e_dst = scale·e_src + offset (the same scale on both axes).
struct Letterbox {
  int src_width = 0, src_height = 0;  // original image
  int dst_width = 0, dst_height = 0;  // network input
  double scale = 1.0;                 // dst pixels per src pixel
  double offset_x = 0.0, offset_y = 0.0;  // padding before the content, dst pixels (may be fractional)
};

// scale = min(dst_w/src_w, dst_h/src_h), content centred. All sizes must be positive.
Letterbox letterbox_fit(int src_width, int src_height, int dst_width, int dst_height);
// Original-image point -> network-input point: q = (p + 0.5)·scale + offset − 0.5.
Point2 letterbox_forward(const Letterbox& lb, const Point2& p);
// Network-input point -> original-image point (exact inverse of letterbox_forward).
Point2 letterbox_inverse(const Letterbox& lb, const Point2& q);

// Resamples `src` (size src_width × src_height of `lb`) to dst_width × dst_height: area
// averaging when shrinking (no aliasing), bilinear when enlarging; `pad` outside the content.
Image letterbox_image(const Image& src, const Letterbox& lb, float pad = 0.f);

}  // namespace sm
