// AASCE Cobb rule (method.md §3.1, steps 1-9 marked below) and SMAPE.
#include "models/measure/cobb.h"

#include <cmath>

#include "tensor/check.h"

namespace sm {

namespace {
// Step 2: direction from the midpoint of the left side to the midpoint of the right side.
Point2 cobb_direction(const CobbVertebra& q) {
  return {(q.top_right[0] + q.bottom_right[0]) / 2 - (q.top_left[0] + q.bottom_left[0]) / 2,
          (q.top_right[1] + q.bottom_right[1]) / 2 - (q.top_left[1] + q.bottom_left[1]) / 2};
}
}  // namespace

bool cobb_computable(const std::vector<CobbVertebra>& v) {
  if (v.size() < 2) return false;
  for (const auto& q : v) {
    const Point2 d = cobb_direction(q);
    if (!(std::hypot(d[0], d[1]) > 0)) return false;  // also false for NaN
  }
  return true;
}

CobbResult cobb_aasce(const std::vector<CobbVertebra>& v, double image_height) {
  const int n = int(v.size());
  SM_CHECK(n >= 2, "cobb_aasce: needs at least 2 vertebrae, got " << n);
  // Step 2 (cobb_direction).
  std::vector<Point2> d(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) d[size_t(i)] = cobb_direction(v[size_t(i)]);
  // Step 3: A_ij = arccos of the cosine rounded to 1e-8 (keeps it in [-1, 1]); no abs, no clip.
  std::vector<double> A(static_cast<size_t>(n) * static_cast<size_t>(n));
  auto at = [&](int i, int j) -> double& { return A[size_t(i) * size_t(n) + size_t(j)]; };
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const auto &a = d[size_t(i)], &b = d[size_t(j)];
      const double cosv = (a[0] * b[0] + a[1] * b[1]) / (std::hypot(a[0], a[1]) * std::hypot(b[0], b[1]));
      at(i, j) = std::acos(std::round(cosv * 1e8) / 1e8);
    }
  // Step 4: column maxima (first row reaching each), then the first column reaching the global max.
  CobbResult r;
  double best = -1;
  for (int j = 0; j < n; ++j) {
    int row = 0;
    for (int i = 1; i < n; ++i)
      if (at(i, j) > at(row, j)) row = i;
    if (at(row, j) > best) best = at(row, j), r.upper = j, r.lower = row;
  }
  SM_CHECK(r.upper >= 0, "cobb_aasce: angles are not finite (coincident corners?)");
  const int u = r.upper, l = r.lower;
  const double deg = 180.0 / M_PI;
  r.angles[0] = best * deg;
  // Step 5: endplate midpoints m (upper of vertebra i at 2i, lower at 2i+1, 0-based) and the
  // S test on the first 2n-2 of them against the line from the first to the last midpoint.
  const int m = 2 * n;
  std::vector<Point2> mid(static_cast<size_t>(m));
  for (int i = 0; i < n; ++i) {
    const auto& q = v[size_t(i)];
    mid[size_t(2 * i)] = {(q.top_left[0] + q.top_right[0]) / 2, (q.top_left[1] + q.top_right[1]) / 2};
    mid[size_t(2 * i + 1)] = {(q.bottom_left[0] + q.bottom_right[0]) / 2, (q.bottom_left[1] + q.bottom_right[1]) / 2};
  }
  const Point2 &first = mid[0], &last = mid[size_t(m - 1)];
  double sum = 0, sum_abs = 0;
  for (int k = 0; k < m - 2; ++k) {
    const double s = (mid[size_t(k)][1] - last[1]) / (first[1] - last[1]) -
                     (mid[size_t(k)][0] - last[0]) / (first[0] - last[0]);
    sum += s;
    sum_abs += std::fabs(s);
  }
  r.s_shape = !(sum * sum == sum_abs * sum_abs);  // exact comparison; NaN counts as S
  auto row_max = [&](int row, int k0, int k1, int* arg) {  // max over k in [k0, k1] of A(row, k)
    int a = k0;
    for (int k = k0 + 1; k <= k1; ++k)
      if (at(row, k) > at(row, a)) a = k;
    if (arg) *arg = a;
    return at(row, a);
  };
  if (!r.s_shape) {  // Step 6
    r.angles[1] = at(0, u) * deg;
    r.angles[2] = at(n - 1, l) * deg;
  } else if (mid[size_t(2 * u + 1)][1] + mid[size_t(2 * l + 1)][1] < image_height) {  // Step 7
    r.angles[1] = row_max(u, 0, u, nullptr) * deg;
    r.angles[2] = row_max(l, l, n - 1, nullptr) * deg;
  } else {  // Step 8
    int k1 = 0;
    r.angles[1] = row_max(u, 0, u, &k1) * deg;
    r.angles[2] = row_max(k1, 0, k1, nullptr) * deg;
  }
  return r;
}

double smape_percent(const std::vector<std::array<double, 3>>& pred, const std::vector<std::array<double, 3>>& gt) {
  SM_CHECK(pred.size() == gt.size(), "smape: " << pred.size() << " predictions for " << gt.size() << " references");
  SM_CHECK(!pred.empty(), "smape: no images");
  double total = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    double num = 0, den = 0;
    for (int k = 0; k < 3; ++k) num += std::fabs(pred[i][size_t(k)] - gt[i][size_t(k)]), den += pred[i][size_t(k)] + gt[i][size_t(k)];
    total += den == 0 ? 0.0 : num / den;
  }
  return 100.0 * total / double(pred.size());
}

}  // namespace sm
