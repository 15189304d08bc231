// Clinical angles from landmarks, driven by the schema's angle rules (method.md §3): signed
// endplate angles in the patient's frame (lordosis, sacral slope) and the AASCE Cobb rule.
#pragma once
#include <nlohmann/json.hpp>
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

// The AASCE vertebra quads for the Cobb rule from points in schema order (the schema's
// aasce_cobb rule names the upper and lower endplate, each running left -> right).
std::vector<CobbVertebra> cobb_vertebrae(const Schema& schema, const AngleSpec& rule, const std::vector<Point2>& points);

// All of the schema's angles (aligned with schema.angles), degrees; NaN (not computable) where a
// needed landmark is absent (NaN) or the landmarks give no direction (coincident corners). image_height is used by the Cobb rule only (step 7 of §3.1).
// cobb_points: when given (e.g. the AASCE stored order, method.md §7.1), the Cobb rule reads
// these instead of `points`.
std::vector<double> angles_compute(const Schema& schema, const std::vector<Point2>& points, double image_height,
                                   const std::vector<Point2>* cobb_points = nullptr);

// {"name": degrees or null} in schema order.
nlohmann::json angles_to_json(const Schema& schema, const std::vector<double>& angles);

}  // namespace sm
