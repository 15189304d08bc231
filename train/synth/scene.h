// Draws the anatomy of a SpineGeometry into a density canvas through a similarity transform
// (patient mm -> image pixels), for the synthetic generator (docs/synthetic.md).
#pragma once
#include "tensor/rng.h"
#include "train/synth/raster.h"
#include "train/synth/spine_geometry.h"

namespace sm::synth {

// p_pixel = centre + s * R(angle) * F * (p_mm - origin), F = diag(-1, 1) when flipped.
struct Similarity {
  Vec2 origin{}, centre{};
  double scale = 1.0;  // pixels per mm
  double angle = 0.0;  // radians
  bool flip = false;   // patient faces image-left
  Vec2 apply(Vec2 p) const;
  Vec2 vec(Vec2 v) const;  // a direction/offset (no translation)
};

// Adds soft tissue, bowel gas, pelvis, femoral heads, ribs, vertebrae (bodies, posterior
// elements, pathology, implants) and the sacrum to `density`. `fine` is a zero-mean texture.
void scene_draw(Image& density, const Image& fine, const SpineGeometry& g, const Similarity& T, Rng& rng);

}  // namespace sm::synth
