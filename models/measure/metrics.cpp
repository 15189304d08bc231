// Metrics of method.md §3.2 (see metrics.h).
#include "models/measure/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/measure/cobb.h"
#include "tensor/check.h"

namespace sm {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }
}  // namespace

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return kNaN;
  const double pos = q * double(v.size() - 1);
  const size_t i = size_t(std::floor(pos));
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - double(i)) * (v[i + 1] - v[i]);
}

Stats stats_compute(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double x) { return !std::isfinite(x); }),
               values.end());
  Stats s;
  s.count = int(values.size());
  if (values.empty()) {
    s.median = s.mean = s.p90 = kNaN;
    return s;
  }
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double x : values) sum += x;
  s.mean = sum / double(values.size());
  s.median = percentile(values, 0.5);
  s.p90 = percentile(values, 0.9);
  return s;
}

double pearson_r(const std::vector<double>& x, const std::vector<double>& y) {
  SM_CHECK(x.size() == y.size(), "pearson_r: sizes differ (" << x.size() << " vs " << y.size() << ")");
  double n = 0, mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) n += 1, mx += x[i], my += y[i];
  if (n < 2) return kNaN;
  mx /= n, my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i]))
      sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : kNaN;
}

std::array<double, 2> vertebra_dimensions(const Schema& s, const std::vector<Point2>& pts, int v) {
  auto mean_len = [&](const std::vector<SegmentSpec>& segs) {
    double sum = 0;
    int n = 0;
    for (const auto& seg : segs) {
      const auto ab = s.segment_landmarks(v, seg);
      if (ab[0] < 0) continue;
      const Point2 &a = pts[size_t(ab[0])], &b = pts[size_t(ab[1])];
      if (!finite2(a) || !finite2(b)) return kNaN;
      sum += std::hypot(b[0] - a[0], b[1] - a[1]);
      ++n;
    }
    return n ? sum / n : -1.0;  // -1: the vertebra has none of these segments
  };
  const double w = mean_len(s.endplates), h = mean_len(s.walls);
  if (w < 0) return {kNaN, kNaN};
  return {w, h < 0 ? w : h};
}

std::vector<LandmarkError> landmark_errors(const Schema& s, const std::vector<Point2>& gt,
                                           const std::vector<bool>& vis, const std::vector<Point2>& pred,
                                           const std::optional<std::array<double, 2>>& spacing) {
  const size_t L = size_t(s.landmark_count());
  SM_CHECK(gt.size() == L && pred.size() == L && (vis.empty() || vis.size() == L),
           "metrics: point counts (gt " << gt.size() << ", pred " << pred.size() << ", visible " << vis.size()
                                        << ") do not match schema '" << s.name << "' (" << L << ")");
  std::vector<LandmarkError> out(L, LandmarkError{kNaN, kNaN, kNaN, kNaN});
  for (int v = 0; v < s.vertebra_count(); ++v) {
    const auto dims = vertebra_dimensions(s, gt, v);
    for (int i : s.vertebra_landmarks(v)) {
      const Point2 &g = gt[size_t(i)], &p = pred[size_t(i)];
      if ((!vis.empty() && !vis[size_t(i)]) || !finite2(g) || !finite2(p)) continue;
      const double dx = p[0] - g[0], dy = p[1] - g[1];
      LandmarkError& e = out[size_t(i)];
      e.px = std::hypot(dx, dy);
      if (spacing) e.mm = std::hypot(dx * (*spacing)[1], dy * (*spacing)[0]);  // (row, col) = (y, x)
      if (dims[0] > 0) e.rel_x = 100.0 * std::fabs(dx) / dims[0];
      if (dims[1] > 0) e.rel_y = 100.0 * std::fabs(dy) / dims[1];
    }
  }
  return out;
}

namespace {

struct ErrorLists {
  std::vector<double> px, mm, rel_x, rel_y;
  void add(const LandmarkError& e) {
    px.push_back(e.px), mm.push_back(e.mm), rel_x.push_back(e.rel_x), rel_y.push_back(e.rel_y);
  }
  ErrorStats stats() const { return {stats_compute(px), stats_compute(mm), stats_compute(rel_x), stats_compute(rel_y)}; }
};

nlohmann::json stats_json(const Stats& s) {
  auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  return {{"count", s.count}, {"median", num(s.median)}, {"mean", num(s.mean)}, {"p90", num(s.p90)}};
}

nlohmann::json error_json(const ErrorStats& e) {
  return {{"px", stats_json(e.px)}, {"mm", stats_json(e.mm)}, {"rel_x_pct", stats_json(e.rel_x)},
          {"rel_y_pct", stats_json(e.rel_y)}};
}

}  // namespace

MetricsReport metrics_compute(const Schema& s, const std::vector<MetricsSample>& samples) {
  MetricsReport r;
  r.schema = s.name;
  r.images = int(samples.size());
  const size_t L = size_t(s.landmark_count()), V = size_t(s.vertebra_count()), A = s.angles.size();
  std::vector<ErrorLists> per_l(L), per_v(V);
  ErrorLists all;
  std::vector<std::vector<double>> gt_a(A), pred_a(A);
  std::vector<int> vertebra_of(L);
  for (size_t v = 0; v < V; ++v)
    for (int i : s.vertebra_landmarks(int(v))) vertebra_of[size_t(i)] = int(v);
  for (const auto& smp : samples) {
    const auto errs = landmark_errors(s, smp.gt, smp.visible, smp.pred, smp.pixel_spacing_mm);
    for (size_t i = 0; i < L; ++i) {
      if (!std::isfinite(errs[i].px)) continue;
      per_l[i].add(errs[i]), per_v[size_t(vertebra_of[i])].add(errs[i]), all.add(errs[i]);
    }
    SM_CHECK((smp.gt_angles.empty() || smp.gt_angles.size() == A) &&
                 (smp.pred_angles.empty() || smp.pred_angles.size() == A),
             "metrics: angle lists must be empty or have " << A << " entries");
    if (smp.gt_angles.empty() || smp.pred_angles.empty()) continue;
    for (size_t k = 0; k < A; ++k) gt_a[k].push_back(smp.gt_angles[k]), pred_a[k].push_back(smp.pred_angles[k]);
  }
  for (auto& l : per_l) r.per_landmark.push_back(l.stats());
  for (auto& l : per_v) r.per_vertebra.push_back(l.stats());
  r.overall = all.stats();
  for (size_t k = 0; k < A; ++k) {
    std::vector<double> abs_err;
    for (size_t i = 0; i < gt_a[k].size(); ++i) abs_err.push_back(std::fabs(pred_a[k][i] - gt_a[k][i]));
    const Stats st = stats_compute(abs_err);
    r.per_angle.push_back({st.count, st.median, st.mean, pearson_r(pred_a[k], gt_a[k])});
  }
  // SMAPE over each aasce_cobb rule's three angles (images where all six values are finite).
  size_t first = 0;
  for (const auto& rule : s.angle_rules) {
    if (rule.type == "aasce_cobb" && !gt_a.empty()) {
      std::vector<std::array<double, 3>> p, g;
      for (size_t i = 0; i < gt_a[first].size(); ++i) {
        std::array<double, 3> pi{}, gi{};
        bool ok = true;
        for (size_t k = 0; k < 3; ++k) {
          pi[k] = pred_a[first + k][i], gi[k] = gt_a[first + k][i];
          ok = ok && std::isfinite(pi[k]) && std::isfinite(gi[k]);
        }
        if (ok) p.push_back(pi), g.push_back(gi);
      }
      if (!p.empty()) r.smape_percent = smape_percent(p, g);
    }
    first += rule.names.size();
  }
  return r;
}

nlohmann::json metrics_to_json(const Schema& s, const MetricsReport& r) {
  nlohmann::json j;
  j["schema"] = r.schema;
  j["images"] = r.images;
  j["overall"] = error_json(r.overall);
  j["per_vertebra"] = nlohmann::json::object();
  for (size_t v = 0; v < r.per_vertebra.size(); ++v) j["per_vertebra"][s.vertebrae[v].name] = error_json(r.per_vertebra[v]);
  j["per_landmark"] = nlohmann::json::object();
  for (size_t i = 0; i < r.per_landmark.size(); ++i) j["per_landmark"][s.landmarks[i]] = error_json(r.per_landmark[i]);
  j["angles"] = nlohmann::json::object();
  auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  for (size_t k = 0; k < r.per_angle.size(); ++k)
    j["angles"][s.angles[k]] = {{"count", r.per_angle[k].count}, {"median_abs_error", num(r.per_angle[k].median_abs)},
                                {"mean_abs_error", num(r.per_angle[k].mean_abs)}, {"pearson_r", num(r.per_angle[k].pearson_r)}};
  j["smape_percent"] = r.smape_percent ? nlohmann::json(*r.smape_percent) : nlohmann::json(nullptr);
  return j;
}

}  // namespace sm
