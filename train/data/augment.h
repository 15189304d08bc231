// Training-time augmentation (issue 3, method.md §6): one random similarity (rotation, scale,
// translation, horizontal flip with the schema's flip_permutation, framing crop = zoom on a random
// window) applied to the image by bilinear resampling and exactly to the landmarks, then
// intensity changes (contrast/brightness with clipping, gamma, blur, noise). Deterministic per
// (seed, epoch, sample).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"
#include "models/image/image.h"
#include "tensor/rng.h"

namespace sm {

struct AugmentOptions {
  double rotate_deg = 10.0;           // uniform in [-rotate_deg, rotate_deg]
  double scale_min = 0.9, scale_max = 1.1;
  double translate = 0.05;            // fraction of the image size, uniform per axis
  double flip_prob = 0.5;             // horizontal flip
  double crop_prob = 0.3;             // framing crop: zoom onto a random window ...
  double crop_min = 0.7;              // ... covering at least this fraction of each side
  // Redraw the similarity (up to 10 draws, then the draw that lost the fewest) until every
  // visible landmark stays in the image: for films framed around the whole annotated spine
  // (AASCE AP), where the position of a level in the frame is itself a cue to its identity and a
  // crop that cuts levels off teaches the networks films they will not see.
  bool keep_in_frame = false;
  double contrast = 0.25;             // contrast factor in [1 - c, 1 + c], brightness ±c/2
  double gamma_min = 0.7, gamma_max = 1.4;
  double blur_max = 1.0;              // Gaussian sigma in pixels, uniform in [0, blur_max]
  double noise_max = 0.02;            // noise std as a fraction of the intensity range
  bool geometric = true, intensity = true;
};

// The 2x3 affine matrix p_out = A [x, y, 1]^T used for the image and the points.
using Affine = std::array<double, 6>;

struct Augmented {
  Image image;                 // same size as the input
  std::vector<Point2> points;  // (L,) relabelled after a flip; NaN stays NaN
  std::vector<bool> visible;   // false when absent before or outside the image after
  Affine transform{};          // input pixel -> output pixel
  bool flipped = false;
};

// The augmentation RNG for one sample: a hash of (seed, epoch, sample), independent of order.
Rng augment_rng(uint64_t seed, uint64_t epoch, uint64_t sample);

// points/visible are in the schema's landmark order. Throws sm::Error on size mismatch.
Augmented augment_apply(const Image& image, const std::vector<Point2>& points, const std::vector<bool>& visible,
                        const Schema& schema, const AugmentOptions& options, uint64_t seed, uint64_t epoch,
                        uint64_t sample);

// Bilinear warp: out(q) = in(A^-1 q), `fill` outside the input (pixel centres at integers).
Image image_warp_affine(const Image& in, const Affine& A, int out_w, int out_h, float fill);
Point2 affine_apply(const Affine& A, Point2 p);

}  // namespace sm
