// Bilinear resize like F.interpolate(x, size=(Ho, Wo), mode="bilinear", align_corners=False).
#pragma once
#include "autograd/var.h"

namespace sm {

// x (N, C, H, W) -> y (N, C, Ho, Wo). Source coordinate of output pixel o along an axis:
// s = (o + 0.5)·(in/out) - 0.5, clamped below at 0; i0 = floor(s), i1 = min(i0 + 1, in - 1),
// λ = s - i0; y = Σ over the 2x2 neighbours of weight · x. Backward: each g[o] is added to the
// same 4 inputs with the same weights (the transpose of that sparse matrix).
Var resize_bilinear(const Var& x, int64_t out_h, int64_t out_w);

}  // namespace sm
