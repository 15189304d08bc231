// Schema-driven angles (method.md §3): endplate differences and slopes in the patient's frame,
// and the AASCE Cobb rule (models/measure/cobb.cpp).
#include "models/measure/angles.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "tensor/check.h"

namespace sm {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }

// Below this length (pixels) an endplate has no direction: atan2(0, 0) would say 0°, a
// plausible-looking angle from coincident corners, where the truth is "not computable".
constexpr double kMinEndplateLength = 1e-6;

// Endplate vector (to − from) for "<vertebra>.<endplate>"; false when a corner is absent or the
// two corners coincide.
bool endplate_vector(const Schema& s, const std::vector<Point2>& pts, const std::string& ref, Point2& e) {
  const auto dot = ref.find('.');
  const int v = s.vertebra_index(ref.substr(0, dot));
  const SegmentSpec* seg = s.endplate_find(ref.substr(dot + 1));
  SM_CHECK(v >= 0 && seg, "schema '" << s.name << "': bad endplate reference '" << ref << "'");
  const auto ab = s.segment_landmarks(v, *seg);
  const Point2 &a = pts[size_t(ab[0])], &b = pts[size_t(ab[1])];
  if (!finite2(a) || !finite2(b)) return false;
  e = {b[0] - a[0], b[1] - a[1]};
  return std::hypot(e[0], e[1]) >= kMinEndplateLength;
}

// Difference wrapped to (−180, 180] only, so that lordosis beyond 90° is kept as it is.
double wrap180(double a) {
  while (a > 180) a -= 360;
  while (a <= -180) a += 360;
  return a;
}

}  // namespace

double endplate_angle_deg(const Point2& e, bool mirror) {
  return std::atan2(-e[1], mirror ? -e[0] : e[0]) * 180.0 / M_PI;
}

bool angles_mirror(const Schema& schema, const std::vector<Point2>& pts) {
  if (schema.frame != "anterior_positive") return false;
  double sum_x = 0;
  for (int v = 0; v < schema.vertebra_count(); ++v)
    for (const auto& seg : schema.endplates) {
      const auto ab = schema.segment_landmarks(v, seg);
      if (ab[0] < 0 || !finite2(pts[size_t(ab[0])]) || !finite2(pts[size_t(ab[1])])) continue;
      sum_x += pts[size_t(ab[1])][0] - pts[size_t(ab[0])][0];
    }
  return sum_x < 0;
}

std::vector<CobbVertebra> cobb_vertebrae(const Schema& s, const AngleSpec& rule, const std::vector<Point2>& pts) {
  const SegmentSpec* up = s.endplate_find(rule.first);
  const SegmentSpec* lo = s.endplate_find(rule.second);
  SM_CHECK(up && lo, "schema '" << s.name << "': aasce_cobb endplates not found");
  std::vector<CobbVertebra> out;
  for (int v = 0; v < s.vertebra_count(); ++v) {
    const auto a = s.segment_landmarks(v, *up), b = s.segment_landmarks(v, *lo);
    out.push_back({pts[size_t(a[0])], pts[size_t(a[1])], pts[size_t(b[0])], pts[size_t(b[1])]});
  }
  return out;
}

std::vector<double> angles_compute(const Schema& s, const std::vector<Point2>& pts, double image_height,
                                   const std::vector<Point2>* cobb_points) {
  SM_CHECK(int(pts.size()) == s.landmark_count(),
           "angles: " << pts.size() << " points for schema '" << s.name << "' (" << s.landmark_count() << ")");
  const bool mirror = angles_mirror(s, pts);
  std::vector<double> out;
  for (const auto& rule : s.angle_rules) {
    if (rule.type == "endplate_difference") {
      Point2 a, b;
      const bool ok = endplate_vector(s, pts, rule.first, a) && endplate_vector(s, pts, rule.second, b);
      out.push_back(ok ? wrap180(endplate_angle_deg(a, mirror) - endplate_angle_deg(b, mirror)) : kNaN);
    } else if (rule.type == "endplate_slope") {
      Point2 a;
      out.push_back(endplate_vector(s, pts, rule.first, a) ? rule.sign * endplate_angle_deg(a, mirror) : kNaN);
    } else if (rule.type == "aasce_cobb") {
      const std::vector<Point2>& cp = cobb_points ? *cobb_points : pts;
      SM_CHECK(int(cp.size()) == s.landmark_count(), "angles: Cobb points have " << cp.size() << " entries, schema '"
                                                                                 << s.name << "' needs " << s.landmark_count());
      bool all = true;
      for (const auto& p : cp) all = all && finite2(p);
      if (!all) {
        out.insert(out.end(), 3, kNaN);
        continue;
      }
      const auto quads = cobb_vertebrae(s, rule, cp);
      if (!cobb_computable(quads)) {  // a vertebra without a left -> right direction
        out.insert(out.end(), 3, kNaN);
        continue;
      }
      const CobbResult r = cobb_aasce(quads, image_height);
      out.insert(out.end(), r.angles.begin(), r.angles.end());
    } else {
      SM_FAIL("schema '" << s.name << "': unknown angle type '" << rule.type << "'");
    }
  }
  return out;
}

double pixel_anisotropy(const PixelSpacing& spacing) {
  if (!spacing) return 0;
  const double row = (*spacing)[0], col = (*spacing)[1];
  if (!(row > 0) || !(col > 0) || !std::isfinite(row) || !std::isfinite(col)) return 0;
  return std::fabs(col / row - 1);
}

std::string pixel_anisotropy_flag(const PixelSpacing& spacing) {
  if (pixel_anisotropy(spacing) <= kAnisotropyTolerance) return "";
  char ratio[32];
  std::snprintf(ratio, sizeof(ratio), "%.3f", (*spacing)[1] / (*spacing)[0]);
  return std::string("anisotropic_pixels:") + ratio;
}

std::vector<Point2> points_square_pixels(const std::vector<Point2>& pts, const PixelSpacing& spacing) {
  if (pixel_anisotropy(spacing) == 0) return pts;
  const double sx = (*spacing)[1] / (*spacing)[0];  // one column in units of one row
  std::vector<Point2> out = pts;
  for (Point2& p : out) p[0] *= sx;
  return out;
}

std::vector<double> angles_compute(const Schema& s, const std::vector<Point2>& pts, double image_height,
                                   const PixelSpacing& spacing, const std::vector<Point2>* cobb_points) {
  if (pixel_anisotropy(spacing) == 0) return angles_compute(s, pts, image_height, cobb_points);
  const std::vector<Point2> sq = points_square_pixels(pts, spacing);
  if (!cobb_points) return angles_compute(s, sq, image_height);
  const std::vector<Point2> cobb_sq = points_square_pixels(*cobb_points, spacing);
  return angles_compute(s, sq, image_height, &cobb_sq);
}

nlohmann::json angles_to_json(const Schema& s, const std::vector<double>& angles) {
  SM_CHECK(angles.size() == s.angles.size(), "angles_to_json: " << angles.size() << " values for "
                                                                 << s.angles.size() << " angles");
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < angles.size(); ++i)
    j[s.angles[i]] = std::isfinite(angles[i]) ? nlohmann::json(angles[i]) : nlohmann::json(nullptr);
  return j;
}

bool schema_has_cobb(const Schema& schema) {
  for (const auto& rule : schema.angle_rules)
    if (rule.type == "aasce_cobb") return true;
  return false;
}

}  // namespace sm
