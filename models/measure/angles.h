// Clinical angles from landmarks, driven by the schema's angle rules (method.md §3): signed
// endplate angles in the patient's frame (lordosis, sacral slope) and the AASCE Cobb rule.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"
#include "models/measure/cobb.h"

namespace sm {

// θ(e) = atan2(−e_y, e_x) in degrees (counter-clockwise from +x with y up); with mirror, x is
// negated first (patient facing image-left, so that anterior becomes +x).
double endplate_angle_deg(const Point2& e, bool mirror);

// True for an "anterior_positive" schema whose endplate vectors (posterior -> anterior) point
// image-left on average: the patient faces left and x is mirrored. Always false for "image".
bool angles_mirror(const Schema& schema, const std::vector<Point2>& points);

// True when one of the schema's angles follows the AASCE Cobb rule (method.md §3.1), which needs
// the image height and reads the dataset's stored point order.
bool schema_has_cobb(const Schema& schema);

// The AASCE vertebra quads for the Cobb rule from points in schema order (the schema's
// aasce_cobb rule names the upper and lower endplate, each running left -> right).
std::vector<CobbVertebra> cobb_vertebrae(const Schema& schema, const AngleSpec& rule, const std::vector<Point2>& points);

// All of the schema's angles (aligned with schema.angles), degrees; NaN (not computable) where a
// needed landmark is absent (NaN) or the landmarks give no direction (coincident corners). image_height is used by the Cobb rule only (step 7 of §3.1).
// cobb_points: when given (e.g. the AASCE stored order, method.md §7.1), the Cobb rule reads
// these instead of `points`.
std::vector<double> angles_compute(const Schema& schema, const std::vector<Point2>& points, double image_height,
                                   const std::vector<Point2>* cobb_points = nullptr);

// Pixel spacing (row, col) in mm, as in an annotation or a DICOM header (method.md §2.1).
using PixelSpacing = std::optional<std::array<double, 2>>;

// Above this relative difference between the row and the column spacing a film is flagged
// `anisotropic_pixels` (its angles are still measured in mm). 1 %: an endplate at 45° measured
// as if the pixels were square would be off by at most 0.29° (atan(1.01) − 45°), below the
// annotation noise; a 1.1:1 film is off by up to 2.7°, a 1.5:1 film by up to 11.5°.
constexpr double kAnisotropyTolerance = 0.01;
// |col/row − 1|; 0 without a spacing (or with a spacing that is not two positive numbers).
double pixel_anisotropy(const PixelSpacing& spacing);
// "anisotropic_pixels:<col/row>" (3 decimals) above kAnisotropyTolerance, else "".
std::string pixel_anisotropy_flag(const PixelSpacing& spacing);
// Points with x scaled by col/row spacing, so that one unit is the same length along x and y
// (the row spacing): angles measured on them are the angles in mm. Unchanged (bit for bit)
// without a spacing or with square pixels. NaN points stay NaN.
std::vector<Point2> points_square_pixels(const std::vector<Point2>& points, const PixelSpacing& spacing);
// angles_compute measured in mm: the points (and cobb_points) through points_square_pixels
// first. The image height is in rows, which the scaling leaves alone.
std::vector<double> angles_compute(const Schema& schema, const std::vector<Point2>& points, double image_height,
                                   const PixelSpacing& spacing, const std::vector<Point2>* cobb_points = nullptr);

// {"name": degrees or null} in schema order.
nlohmann::json angles_to_json(const Schema& schema, const std::vector<double>& angles);

}  // namespace sm
