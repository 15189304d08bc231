// Vertebra shape checks (see quad_check.h).
#include "models/geometry/quad_check.h"

#include <algorithm>
#include <cmath>

namespace sm {

namespace {

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
double dist(const Point2& a, const Point2& b) { return std::hypot(a[0] - b[0], a[1] - b[1]); }

// The angle between two directions as lines (0..90°).
double line_angle_deg(const Point2& a, const Point2& b) {
  const double d = std::fabs(std::remainder(std::atan2(a[1], a[0]) - std::atan2(b[1], b[0]), M_PI));
  return d * 180 / M_PI;
}

}  // namespace

std::vector<Point2> vertebra_polygon(const Schema& s, const std::vector<Point2>& pts, int v) {
  std::vector<Point2> poly;
  int e = 0;
  for (const auto& seg : s.endplates) {
    const auto ab = s.segment_landmarks(v, seg);
    if (ab[0] < 0) continue;
    if (e++ == 0) poly.insert(poly.end(), {pts[size_t(ab[0])], pts[size_t(ab[1])]});
    else poly.insert(poly.end(), {pts[size_t(ab[1])], pts[size_t(ab[0])]});
  }
  return poly;
}

bool polygon_healthy(const std::vector<Point2>& p) {
  const size_t n = p.size();
  if (n < 4) return true;
  double area = 0, longest = 0;
  int pos = 0, neg = 0;
  for (size_t i = 0; i < n; ++i) {
    const Point2 &a = p[i], &b = p[(i + 1) % n], &c = p[(i + 2) % n];
    if (!finite2(a)) return false;
    const double cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    (cross > 0 ? pos : neg)++;
    area += a[0] * b[1] - b[0] * a[1];
    longest = std::max(longest, dist(a, b));
  }
  return (pos == 0 || neg == 0) && std::fabs(area) / 2 >= 0.05 * longest * longest;
}

double vertebra_size(const Schema& s, const std::vector<Point2>& pts, int v) {
  const std::vector<Point2> poly = vertebra_polygon(s, pts, v);
  if (poly.size() != 4) return NAN;
  for (const Point2& p : poly)
    if (!finite2(p)) return NAN;
  // poly = e1.from, e1.to, e2.to, e2.from: sides 0-1 and 2-3 are endplates, 1-2 and 3-0 walls.
  const double width = 0.5 * (dist(poly[0], poly[1]) + dist(poly[2], poly[3]));
  const double height = 0.5 * (dist(poly[1], poly[2]) + dist(poly[3], poly[0]));
  return std::max(width, height);
}

std::string quad_check(const Schema& s, const std::vector<Point2>& pts, int v, double neighbour_size,
                       const Point2& level_centre, double spacing, const QuadLimits& lim) {
  const auto idx = s.vertebra_landmarks(v);
  for (int i : idx)
    if (!finite2(pts[size_t(i)])) return "degenerate";
  const std::vector<Point2> poly = vertebra_polygon(s, pts, v);
  if (poly.size() != 4) return "";
  if (!polygon_healthy(poly)) return "degenerate";
  // Corner angles: at corner k between the sides to its two neighbours.
  for (size_t k = 0; k < 4; ++k) {
    const Point2 &a = poly[(k + 3) % 4], &b = poly[k], &c = poly[(k + 1) % 4];
    const double ux = a[0] - b[0], uy = a[1] - b[1], wx = c[0] - b[0], wy = c[1] - b[1];
    const double deg = std::acos(std::clamp((ux * wx + uy * wy) / (std::hypot(ux, uy) * std::hypot(wx, wy)), -1.0, 1.0)) * 180 / M_PI;
    if (!(deg >= lim.corner_min_deg && deg <= lim.corner_max_deg)) return "corner_angle";
  }
  const Point2 e1{poly[1][0] - poly[0][0], poly[1][1] - poly[0][1]}, e2{poly[2][0] - poly[3][0], poly[2][1] - poly[3][1]};
  if (!(line_angle_deg(e1, e2) <= lim.endplate_diverge_deg)) return "endplates_diverge";
  const double size = vertebra_size(s, pts, v);
  if (std::isfinite(neighbour_size) && neighbour_size > 0 &&
      !(size >= lim.size_min * neighbour_size && size <= lim.size_max * neighbour_size))
    return "size";
  if (finite2(level_centre) && std::isfinite(spacing) && spacing > 0) {
    const Point2 c{0.25 * (poly[0][0] + poly[1][0] + poly[2][0] + poly[3][0]), 0.25 * (poly[0][1] + poly[1][1] + poly[2][1] + poly[3][1])};
    if (!(dist(c, level_centre) <= lim.centre_max * spacing)) return "off_centre";
  }
  return "";
}

}  // namespace sm
