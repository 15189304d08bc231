// Rotation-aligned vertebra crops (method.md §5): the similarity transform
// p = c + (s/S)·R(θ)·(u − u₀) from crop pixel u to image pixel p, its exact inverse, bilinear
// crop sampling, crop parameters from a vertebra's corners, and random jitter for training.
#pragma once
#include <functional>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"
#include "models/image/image.h"

namespace sm {

struct CropParams {
  Point2 centre{0.0, 0.0};  // c: image point at the crop centre u₀ = ((S−1)/2, (S−1)/2)
  double angle = 0.0;       // θ, radians: the crop's +x axis points along (cos θ, sin θ) in the image
  double side = 1.0;        // s: side of the cropped square, in image pixels
  int size = 64;            // S: side of the crop in crop pixels
};

// Crop pixel u -> image pixel p = c + (s/S)·R(θ)·(u − u₀), R(θ) = [[cos, −sin], [sin, cos]].
Point2 crop_to_image(const CropParams& crop, const Point2& u);
// Image pixel p -> crop pixel u = u₀ + (S/s)·R(−θ)·(p − c) (the exact inverse).
Point2 crop_from_image(const CropParams& crop, const Point2& p);

// The S × S crop, each pixel bilinearly sampled at its image position; `pad` outside the image.
// antialias: when s/S > 1 each crop pixel averages k × k bilinear samples spread over its
// footprint (k = ceil(s/S), at most 8), so shrinking does not alias. The geometry is unchanged.
Image crop_sample(const Image& image, const CropParams& crop, float pad = 0.f, bool antialias = true);

// A vertebra's frame from its corners (schema endplates and walls).
struct VertebraFrame {
  bool valid = false;
  Point2 centre{0.0, 0.0};  // mean of its corners (S1 with 2 corners: the endplate midpoint)
  double angle = 0.0;       // mean endplate direction, turned so the crop's +y points caudally
  double width = 0.0;       // mean endplate length
  double height = 0.0;      // mean wall length; a vertebra without walls (S1) takes the nearest
                            // cranial vertebra's max(width, height) for both (method.md §5)
};

// Needs all corners of the vertebra finite (NaN marks an absent landmark). Endplates are listed
// cranial first in the schema; that fixes which way is caudal.
VertebraFrame vertebra_frame(const Schema& schema, const std::vector<Point2>& points, int vertebra);

// Crop parameters for one vertebra: centre and angle from its frame, s = (1 + 2m)·max(w, h).
// Throws sm::Error when the vertebra's corners are missing.
CropParams crop_params_from_vertebra(const Schema& schema, const std::vector<Point2>& points, int vertebra,
                                     int size, double margin = 0.25);

// Random perturbation of a crop, matched to the step-1 errors (method.md §5).
struct CropJitter {
  double centre_px = 0.0;    // centre shift per axis, image pixels
  double centre_frac = 0.0;  // centre shift per axis as a fraction of the side s (adds to centre_px)
  double angle_deg = 0.0;    // rotation, degrees
  double scale_log = 0.0;    // side multiplied by exp(scale_log · draw)
  bool uniform = false;      // false: each value is a standard deviation of a normal draw;
                             // true: the half-width of a uniform draw
};

// draw(): N(0, 1) when !jitter.uniform, U[0, 1) when jitter.uniform (the caller's RNG, so runs
// stay reproducible). Draw order: centre x, centre y, angle, scale.
CropParams crop_jitter(const CropParams& crop, const CropJitter& jitter, const std::function<double()>& draw);

}  // namespace sm
