// Angles of method.md §3 on hand-made landmarks: lordosis and sacral slope signs for a patient
// facing right or left, values beyond 90° not folded, the AASCE Cobb rule on small cases, SMAPE
// and the metrics of §3.2.
#include <doctest/doctest.h>

#include <cmath>

#include "models/measure/angles.h"
#include "models/measure/cobb.h"
#include "models/measure/metrics.h"
#include "tensor/check.h"

using namespace sm;

namespace {

// Lumbar-lateral landmarks whose endplates have the given angles in the patient's frame
// (degrees, counter-clockwise from anterior with y up): L1..L5 one angle each (both endplates),
// S1 its own. facing = +1: anterior is image +x; −1: the image mirrored (anterior −x).
std::vector<Point2> lumbar(const std::array<double, 5>& l_deg, double s1_deg, int facing) {
  const Schema& s = schema_builtin("lumbar-lateral");
  std::vector<Point2> p(22);
  for (int v = 0; v < 6; ++v) {
    const double t = (v < 5 ? l_deg[size_t(v)] : s1_deg) * M_PI / 180;
    // Patient-frame endplate e = (cos t, −sin t) in image axes (y down); mirrored when facing left.
    const double ex = facing * std::cos(t) * 20, ey = -std::sin(t) * 20;
    const double cx = 500 + facing * 5 * v, cy = 100 + 60 * v;
    const std::string n = s.vertebrae[size_t(v)].name;
    p[size_t(s.landmark_index(n + ".sup_ant"))] = {cx + ex, cy - 15 + ey};
    p[size_t(s.landmark_index(n + ".sup_post"))] = {cx - ex, cy - 15 - ey};
    if (v < 5) {
      p[size_t(s.landmark_index(n + ".inf_ant"))] = {cx + ex, cy + 15 + ey};
      p[size_t(s.landmark_index(n + ".inf_post"))] = {cx - ex, cy + 15 - ey};
    }
  }
  return p;
}

}  // namespace

TEST_CASE("lordosis and sacral slope: signs, facing left or right") {
  const Schema& s = schema_builtin("lumbar-lateral");
  for (int facing : {1, -1}) {
    CAPTURE(facing);
    // L1 superior tilted 25° anterior-up, L5 inferior 20° anterior-down, S1 40° anterior-down.
    const auto pts = lumbar({25, 15, 5, -5, -20}, -40, facing);
    CHECK(angles_mirror(s, pts) == (facing < 0));
    const auto a = angles_compute(s, pts, 0);
    CHECK(a[0] == doctest::Approx(45));  // L1_L5_lordosis = 25 − (−20)
    CHECK(a[1] == doctest::Approx(65));  // L1_S1_lordosis = 25 − (−40)
    CHECK(a[2] == doctest::Approx(40));  // sacral_slope = −θ(S1)
    // A kyphotic segment gives a negative lordosis.
    const auto k = angles_compute(s, lumbar({-10, 0, 5, 10, 15}, 20, facing), 0);
    CHECK(k[0] == doctest::Approx(-25));
    CHECK(k[2] == doctest::Approx(-20));
    // Beyond 90°: not folded.
    const auto big = angles_compute(s, lumbar({70, 30, 0, -30, -50}, -65, facing), 0);
    CHECK(big[0] == doctest::Approx(120));
    CHECK(big[1] == doctest::Approx(135));
    CHECK(big[2] == doctest::Approx(65));
  }
  CHECK(endplate_angle_deg({1, -1}, false) == doctest::Approx(45));  // y down: up-right is +45°
  CHECK(endplate_angle_deg({-1, -1}, true) == doctest::Approx(45));
  auto pts = lumbar({25, 15, 5, -5, -20}, -40, 1);
  pts[size_t(s.landmark_index("S1.sup_ant"))] = {NAN, NAN};
  const auto a = angles_compute(s, pts, 0);
  CHECK(a[0] == doctest::Approx(45));
  CHECK(std::isnan(a[1]));
  CHECK(angles_to_json(s, a)["sacral_slope"].is_null());
}

namespace {
// n vertebrae as 20 × 10 boxes stacked down the image, each rotated by deg[v] (image frame).
std::vector<CobbVertebra> boxes(const std::vector<double>& deg, double dx = 0) {
  std::vector<CobbVertebra> v;
  for (size_t i = 0; i < deg.size(); ++i) {
    const double t = deg[i] * M_PI / 180, c = std::cos(t), s = std::sin(t);
    const double cx = 100 + dx * double(i) * double(i), cy = 50 + 20 * double(i);
    auto at = [&](double a, double b) { return Point2{cx + a * c - b * s, cy + a * s + b * c}; };
    v.push_back({at(-10, -5), at(10, -5), at(-10, 5), at(10, 5)});
  }
  return v;
}
}  // namespace

TEST_CASE("AASCE Cobb rule on small cases") {
  // A straight spine: all zero.
  const auto r0 = cobb_aasce(boxes(std::vector<double>(17, 0.0)), 1000);
  CHECK(r0.angles[0] == doctest::Approx(0).epsilon(1e-6));
  // One C curve (midpoints on one side of the end-to-end line): not S. Tilts 0..-20..0..+15.
  std::vector<double> t{0, -5, -10, -15, -20, -15, -10, -5, 0, 5, 10, 15, 10, 5, 0, 0, 0};
  const auto r1 = cobb_aasce(boxes(t, 0.5), 1000);
  CHECK(r1.angles[0] == doctest::Approx(35).epsilon(1e-6));
  CHECK(r1.upper == 4);
  CHECK(r1.lower == 11);
  CHECK_FALSE(r1.s_shape);
  CHECK(r1.angles[1] == doctest::Approx(20).epsilon(1e-6));  // A(1, u)
  CHECK(r1.angles[2] == doctest::Approx(15).epsilon(1e-6));  // A(17, l)
  // The same tilts on an S-shaped centre line: step 7 (end plates above mid-image).
  std::vector<CobbVertebra> sv = boxes(t);
  for (size_t i = 0; i < sv.size(); ++i) {
    const double shift = 30 * std::sin(2 * M_PI * double(i) / 16.0);
    for (Point2* p : {&sv[i].top_left, &sv[i].top_right, &sv[i].bottom_left, &sv[i].bottom_right}) (*p)[0] += shift;
  }
  const auto r2 = cobb_aasce(sv, 10000);
  CHECK(r2.s_shape);
  CHECK(r2.angles[1] == doctest::Approx(20).epsilon(1e-6));  // max over k <= u of A(u, k)
  CHECK(r2.angles[2] == doctest::Approx(15).epsilon(1e-6));  // max over k >= l of A(l, k)
  // Step 8 (image height small): α₂ first reached at k₁ = 0, α₃ = max over k <= 0 of A(0, k) = 0.
  const auto r3 = cobb_aasce(sv, 10);
  CHECK(r3.angles[1] == doctest::Approx(20).epsilon(1e-6));
  CHECK(r3.angles[2] == doctest::Approx(0).epsilon(1e-6));
  // Beyond 90°: no absolute value, no folding.
  t.assign(17, 0.0);
  t[16] = 150;
  CHECK(cobb_aasce(boxes(t), 1000).angles[0] == doctest::Approx(150).epsilon(1e-6));
  CHECK_THROWS_AS(cobb_aasce({}, 10), Error);
}

TEST_CASE("coincident corners give no angle (NaN, null in JSON), not 0 degrees") {
  // Issue 11 item 6: atan2(0, 0) = 0 made a collapsed endplate look like a level one.
  const Schema& s = schema_builtin("lumbar-lateral");
  auto p = lumbar({10, 5, 0, -5, -10}, -30, +1);
  p[size_t(s.landmark_index("L1.sup_ant"))] = p[size_t(s.landmark_index("L1.sup_post"))];  // L1's superior endplate: one point
  const auto a = angles_compute(s, p, 0);
  REQUIRE(a.size() == 3);
  CHECK(std::isnan(a[0]));  // L1_L5_lordosis needs L1.superior
  CHECK(std::isnan(a[1]));  // L1_S1_lordosis too
  CHECK(std::isfinite(a[2]));  // sacral slope does not
  CHECK(angles_to_json(s, a)["L1_L5_lordosis"].is_null());
  // Every landmark on one point: nothing is computable.
  for (double v : angles_compute(s, std::vector<Point2>(22, Point2{100, 100}), 0)) CHECK(std::isnan(v));
  // The Cobb rule: one vertebra collapsed to a point gives NaN angles instead of an exception.
  const Schema& ap = schema_builtin("aasce-ap");
  std::vector<Point2> q;
  for (const auto& v : boxes(std::vector<double>(17, 0.0)))
    for (const Point2& c : {v.top_left, v.top_right, v.bottom_left, v.bottom_right}) q.push_back(c);
  for (int k = 4; k < 8; ++k) q[size_t(k)] = q[4];
  CHECK(cobb_computable(boxes(std::vector<double>(17, 0.0))));
  for (double v : angles_compute(ap, q, 1000)) CHECK(std::isnan(v));
}

TEST_CASE("SMAPE") {
  CHECK(smape_percent({{10, 5, 5}}, {{12, 5, 3}}) == doctest::Approx(10));
  CHECK(smape_percent({{10, 5, 5}, {0, 0, 0}}, {{12, 5, 3}, {0, 0, 0}}) == doctest::Approx(5));
  CHECK(smape_percent({{20, 0, 0}}, {{0, 0, 0}}) == doctest::Approx(100));
  CHECK_THROWS_AS(smape_percent({{1, 2, 3}}, {}), Error);
}

TEST_CASE("metrics: errors, relative errors, statistics") {
  const Schema& s = schema_builtin("lumbar-lateral");
  const auto gt = lumbar({0, 0, 0, 0, 0}, 0, 1);  // boxes 40 wide, 30 high; S1 endplate 40
  auto pred = gt;
  for (auto& p : pred) p[0] += 4, p[1] += 3;  // 5 px off everywhere
  const auto e = landmark_errors(s, gt, {}, pred, std::array<double, 2>{0.2, 0.1});
  CHECK(e[0].px == doctest::Approx(5));
  CHECK(e[0].mm == doctest::Approx(std::hypot(4 * 0.1, 3 * 0.2)));
  CHECK(e[0].rel_x == doctest::Approx(10));  // 4 / 40
  CHECK(e[0].rel_y == doctest::Approx(10));  // 3 / 30
  const int s1 = s.landmark_index("S1.sup_ant");
  CHECK(e[size_t(s1)].rel_y == doctest::Approx(7.5));  // S1: endplate length for both
  const Stats st = stats_compute({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, NAN});
  CHECK(st.count == 10);
  CHECK(st.median == doctest::Approx(5.5));
  CHECK(st.mean == doctest::Approx(5.5));
  CHECK(st.p90 == doctest::Approx(9.1));
  CHECK(pearson_r({1, 2, 3}, {2, 4, 6.5}) == doctest::Approx(4.5 / std::sqrt(2 * 10.1666666666667)));
  CHECK(std::isnan(pearson_r({1, 1}, {1, 2})));

  std::vector<MetricsSample> samples;
  for (int i = 0; i < 3; ++i) {
    MetricsSample m;
    m.gt = gt;
    m.pred = pred;
    m.visible.assign(22, true);
    m.visible[0] = i != 0;  // the first image's L1.sup_ant does not count
    m.gt_angles = {40.0 + i, 50.0 + i, 30.0};
    m.pred_angles = {41.0 + 2 * i, 50.0 + i, 28.0 + i};
    samples.push_back(m);
  }
  const MetricsReport r = metrics_compute(s, samples);
  CHECK(r.per_landmark[0].px.count == 2);
  CHECK(r.overall.px.count == 3 * 22 - 1);
  CHECK(r.overall.px.median == doctest::Approx(5));
  CHECK(r.per_vertebra[5].rel_x.mean == doctest::Approx(10));
  CHECK(r.per_angle[0].mean_abs == doctest::Approx(2));
  CHECK(r.per_angle[1].median_abs == doctest::Approx(0));
  CHECK(r.per_angle[0].pearson_r == doctest::Approx(1));
  CHECK_FALSE(r.smape_percent.has_value());
  const auto j = metrics_to_json(s, r);
  CHECK(j["per_vertebra"]["S1"]["rel_y_pct"]["median"] == doctest::Approx(7.5));
  CHECK(j["angles"]["sacral_slope"]["median_abs_error"] == doctest::Approx(1));
}
