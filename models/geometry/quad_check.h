// One vertebra per quadrilateral (issue 19 §2): whether a vertebra's four corners can be one
// vertebral body, by shape priors that hold for every level of a lumbar or whole-spine film:
//   - convex, not self-intersecting, with an area (the polygon of its endplates);
//   - every corner angle between its endplate and its wall within [corner_min, corner_max]
//     (a body is close to a rectangle; a quad whose left corners sit on one vertebra and right
//     corners on the next is a parallelogram sheared by a whole level: ~45° / 135° corners);
//   - its two endplates within endplate_diverge of parallel (wedging stays below ~30°);
//   - its size (max of mean width and mean height) within [size_min, size_max] × its neighbours';
//   - its centre within centre_max × the local level spacing of its decoded level centre (nearer
//     its own level than a neighbour's).
#pragma once
#include <string>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"

namespace sm {

struct QuadLimits {
  double corner_min_deg = 55, corner_max_deg = 125;
  double endplate_diverge_deg = 35;
  double size_min = 0.5, size_max = 2.0;
  double centre_max = 0.5;
};

// The corners of vertebra v as a polygon: the first endplate from -> to, then the second back
// (empty when the schema gives it fewer than two endplates).
std::vector<Point2> vertebra_polygon(const Schema& schema, const std::vector<Point2>& points, int v);

// Convex with a non-vanishing area: every turn has the same sign and the area is at least 5 %
// of the square of the longest side (a polygon with fewer than 4 corners passes).
bool polygon_healthy(const std::vector<Point2>& polygon);

// "" when vertebra v of `points` passes, else the first failed test: "degenerate",
// "corner_angle", "endplates_diverge", "size", "off_centre". neighbour_size (NaN: not checked) is
// the size of the neighbouring vertebrae; level_centre and spacing (NaN: not checked) its
// decoded level centre and the local level spacing. Vertebrae with fewer than 4 corners (S1)
// are checked for finiteness only.
std::string quad_check(const Schema& schema, const std::vector<Point2>& points, int v, double neighbour_size,
                       const Point2& level_centre, double spacing, const QuadLimits& limits = {});

// max(mean endplate length, mean wall length) of vertebra v (NaN when a corner is missing or it
// has no walls).
double vertebra_size(const Schema& schema, const std::vector<Point2>& points, int v);

}  // namespace sm
