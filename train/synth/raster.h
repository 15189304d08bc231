// Soft-edged rasterisation for the synthetic radiograph generator (docs/synthetic.md): shapes add
// "density" (attenuation, arbitrary units) to a float canvas, evaluated at pixel centres
// (method.md §2) with a one-pixel anti-aliased edge and an optional bright rim (cortical bone).
#pragma once
#include <array>
#include <vector>

#include "models/image/image.h"

namespace sm::synth {

using Vec2 = std::array<double, 2>;

struct Fill {
  float density = 1.f;     // interior attenuation
  float rim = 0.f;         // extra attenuation of the shell within rim_px of the edge
  float rim_px = 2.f;      // shell thickness in pixels
  float texture = 0.f;     // interior multiplied by (1 + texture * T(x, y)) (trabecular pattern)
  float edge_px = 1.f;     // edge softness in pixels (1 = anti-aliased; larger = blurry edge)
  const Image* tex = nullptr;  // T: zero-mean texture of the canvas's size
};

// Convex polygon (either orientation). bulge[i] > 0 pushes edge i (from pts[i] to pts[i+1])
// inwards by bulge[i] * 4t(1-t) pixels: concave endplates with the corners left in place.
void polygon_add(Image& canvas, const std::vector<Vec2>& pts, const Fill& fill, const std::vector<double>& bulge = {});
// Ellipse with semi-axes (rx, ry) rotated by angle (radians); edge distance approximated.
void ellipse_add(Image& canvas, Vec2 centre, double rx, double ry, double angle, const Fill& fill);
// Band of half-width hw along the arc of radius r around centre, polar angles a0..a1 (radians, y down).
void arc_add(Image& canvas, Vec2 centre, double r, double hw, double a0, double a1, const Fill& fill);
// Capsule (thick segment) from a to b with radius rad.
void capsule_add(Image& canvas, Vec2 a, Vec2 b, double rad, const Fill& fill);

// Separable Gaussian blur (sigma in pixels, edges clamped); sigma <= 0.05 leaves it as is.
void gaussian_blur(Image& img, double sigma);

}  // namespace sm::synth
