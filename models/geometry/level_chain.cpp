// Ordered level decoding by dynamic programming (see level_chain.h for the cost).
#include "models/geometry/level_chain.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tensor/check.h"

namespace sm {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

// Running sums of a 2-vector sample: count, first and second moments.
struct Moments {
  double n = 0, x = 0, y = 0, xx = 0, xy = 0, yy = 0;
  void add(double a, double b) { n += 1, x += a, y += b, xx += a * a, xy += a * b, yy += b * b; }
  void add(const Moments& o) { n += o.n, x += o.x, y += o.y, xx += o.xx, xy += o.xy, yy += o.yy; }
};

// The expected step from level a to level b > a (sums of the prior's means and covariances: the
// steps are modelled as independent).
struct Span {
  Point2 mean{0.0, 0.0};
  std::array<double, 3> cov{0.0, 0.0, 0.0};
  double length() const { return std::hypot(mean[0], mean[1]); }
};

Span span_of(const LevelPrior& prior, int a, int b) {
  Span s;
  for (int u = a; u < b; ++u) {
    s.mean[0] += prior.mean[size_t(u)][0], s.mean[1] += prior.mean[size_t(u)][1];
    for (int k = 0; k < 3; ++k) s.cov[size_t(k)] += prior.cov[size_t(u)][size_t(k)];
  }
  return s;
}

// ½ rᵀ C⁻¹ r for the step p → q (film pixels) against the span, or +∞ when the step does not
// advance along the span's direction by min_advance of its length.
double step_cost(const Point2& p, const Point2& q, double scale, const Span& span, double min_advance) {
  const double dx = (q[0] - p[0]) / scale, dy = (q[1] - p[1]) / scale;
  const double len = span.length();
  if (!(len > 0)) return kInf;
  const double advance = (dx * span.mean[0] + dy * span.mean[1]) / len;
  if (!(advance >= min_advance * len)) return kInf;
  const double rx = dx - span.mean[0], ry = dy - span.mean[1];
  const double a = span.cov[0], b = span.cov[1], c = span.cov[2], det = a * c - b * b;
  if (!(det > 0)) return kInf;
  return 0.5 * (c * rx * rx - 2 * b * rx * ry + a * ry * ry) / det;
}

}  // namespace

LevelPrior level_prior_fit(const std::vector<std::vector<Point2>>& centres, double sd_floor) {
  SM_CHECK(!centres.empty(), "level prior: no films");
  const size_t V = centres.front().size();
  SM_CHECK(V >= 2, "level prior: a schema needs at least two levels");
  std::vector<Moments> pair(V - 1), pair_films(V - 1);
  Moments pooled;
  int films = 0;
  for (const auto& c : centres) {
    SM_CHECK(c.size() == V, "level prior: a film has " << c.size() << " levels, expected " << V);
    std::vector<double> lengths;
    for (size_t v = 0; v + 1 < V; ++v)
      if (finite2(c[v]) && finite2(c[v + 1])) lengths.push_back(std::hypot(c[v + 1][0] - c[v][0], c[v + 1][1] - c[v][1]));
    if (lengths.size() < 2) continue;  // one step alone defines its own unit
    const double s = median_of(lengths);
    if (!(s > 0)) continue;
    ++films;
    for (size_t v = 0; v + 1 < V; ++v) {
      if (!finite2(c[v]) || !finite2(c[v + 1])) continue;
      const double x = (c[v + 1][0] - c[v][0]) / s, y = (c[v + 1][1] - c[v][1]) / s;
      pair[v].add(x, y);
      pair[v].add(-x, y);  // the mirrored film: training flips films left-right
      pair_films[v].n += 1;
    }
  }
  SM_CHECK(films > 0, "level prior: no training film has two consecutive steps between annotated levels");
  for (const Moments& m : pair) pooled.add(m);
  LevelPrior prior;
  prior.films = films;
  for (size_t v = 0; v + 1 < V; ++v) {
    const Moments& m = pair_films[v].n >= 3 ? pair[v] : pooled;
    const double mx = m.x / m.n, my = m.y / m.n;
    const double f = sd_floor * sd_floor;
    prior.mean.push_back({mx, my});
    prior.cov.push_back({m.xx / m.n - mx * mx + f, m.xy / m.n - mx * my, m.yy / m.n - my * my + f});
  }
  return prior;
}

nlohmann::json level_prior_to_json(const LevelPrior& prior) {
  nlohmann::json steps = nlohmann::json::array();
  for (size_t v = 0; v < prior.mean.size(); ++v)
    steps.push_back({prior.mean[v][0], prior.mean[v][1], prior.cov[v][0], prior.cov[v][1], prior.cov[v][2]});
  return {{"films", prior.films}, {"steps", steps}};
}

LevelPrior level_prior_from_json(const nlohmann::json& j, int levels, const std::string& source) {
  SM_CHECK(j.is_object() && j.contains("steps") && j["steps"].is_array() && j.contains("films") && j["films"].is_number_integer(),
           source << ": level_prior must be {\"films\": n, \"steps\": [[mean_x, mean_y, cov_xx, cov_xy, cov_yy], ...]}");
  for (const auto& [key, value] : j.items())
    SM_CHECK(key == "films" || key == "steps", source << ": level_prior has an unknown key '" << key << "'");
  LevelPrior prior;
  prior.films = j["films"].get<int>();
  SM_CHECK(j["steps"].size() == size_t(levels - 1),
           source << ": level_prior has " << j["steps"].size() << " steps, the schema's " << levels << " levels need " << levels - 1);
  for (const auto& e : j["steps"]) {
    SM_CHECK(e.is_array() && e.size() == 5, source << ": a level_prior step is [mean_x, mean_y, cov_xx, cov_xy, cov_yy]");
    std::array<double, 5> v{};
    for (size_t k = 0; k < 5; ++k) {
      SM_CHECK(e[k].is_number(), source << ": a level_prior value is not a number");
      v[k] = e[k].get<double>();
      SM_CHECK(std::isfinite(v[k]), source << ": a level_prior value is not finite");
    }
    SM_CHECK(v[2] > 0 && v[4] > 0 && v[2] * v[4] - v[3] * v[3] > 0, source << ": a level_prior covariance is not positive definite");
    SM_CHECK(std::hypot(v[0], v[1]) > 0, source << ": a level_prior step has zero length");
    prior.mean.push_back({v[0], v[1]});
    prior.cov.push_back({v[2], v[3], v[4]});
  }
  return prior;
}

LevelDecode level_chain_decode(const std::vector<std::vector<LevelCandidate>>& candidates, const LevelPrior& prior,
                               const LevelDecodeOptions& o) {
  const int V = int(candidates.size());
  LevelDecode out;
  out.centres.assign(size_t(V), Point2{NAN, NAN});
  out.chosen.assign(size_t(V), -1);
  // The strongest candidate of each level: the answer when nothing can be decoded.
  std::vector<int> top(size_t(V), -1);
  for (int v = 0; v < V; ++v)
    for (int i = 0; i < int(candidates[size_t(v)].size()); ++i) {
      const LevelCandidate& c = candidates[size_t(v)][size_t(i)];
      if (finite2(c.p) && (top[size_t(v)] < 0 || c.mass > candidates[size_t(v)][size_t(top[size_t(v)])].mass)) top[size_t(v)] = i;
    }
  for (int v = 0; v < V; ++v)
    if (top[size_t(v)] >= 0) out.centres[size_t(v)] = candidates[size_t(v)][size_t(top[size_t(v)])].p, out.chosen[size_t(v)] = top[size_t(v)];
  if (V < 2 || int(prior.mean.size()) != V - 1) return out;

  // The film's level spacing from the strongest peaks: each pair of levels at most 3 apart gives
  // |Δp| / |Σμ|; the median is robust to a few wrong peaks.
  std::vector<double> scales;
  for (int a = 0; a < V; ++a)
    for (int b = a + 1; b < V && b <= a + 3; ++b) {
      if (top[size_t(a)] < 0 || top[size_t(b)] < 0) continue;
      const Point2& p = out.centres[size_t(a)];
      const Point2& q = out.centres[size_t(b)];
      const double len = span_of(prior, a, b).length();
      if (len > 0) scales.push_back(std::hypot(q[0] - p[0], q[1] - p[1]) / len);
    }
  const double s0 = median_of(scales);
  if (!(s0 > 0)) return out;

  auto unary = [&](int v, int i) { return -std::log(std::max(candidates[size_t(v)][size_t(i)].mass, o.mass_floor)); };
  struct Node {
    double cost = kInf;
    int prev_v = -1, prev_i = -1;
  };
  double best_cost = kInf;
  std::vector<int> best_chosen;
  double best_scale = s0;
  // A wrong scale estimate (many collapsed peaks) is the failure the median cannot fix alone:
  // try a few around it and keep the cheapest chain.
  for (double factor : {0.75, 0.87, 1.0, 1.15, 1.33}) {
    const double s = s0 * factor;
    std::vector<std::vector<Node>> dp(static_cast<size_t>(V));
    for (int v = 0; v < V; ++v) dp[size_t(v)].resize(candidates[size_t(v)].size());
    for (int v = 0; v < V; ++v)
      for (int i = 0; i < int(candidates[size_t(v)].size()); ++i) {
        if (!finite2(candidates[size_t(v)][size_t(i)].p)) continue;
        Node& n = dp[size_t(v)][size_t(i)];
        n.cost = v * o.miss_cost + unary(v, i);  // the chain starts here: levels above it missing
        for (int u = std::max(0, v - 1 - o.max_gap); u < v; ++u) {
          const Span span = span_of(prior, u, v);
          for (int j = 0; j < int(candidates[size_t(u)].size()); ++j) {
            const Node& m = dp[size_t(u)][size_t(j)];
            if (m.cost == kInf) continue;
            const double c = m.cost + (v - u - 1) * o.miss_cost +
                             step_cost(candidates[size_t(u)][size_t(j)].p, candidates[size_t(v)][size_t(i)].p, s, span, o.min_advance) +
                             unary(v, i);
            if (c < n.cost) n.cost = c, n.prev_v = u, n.prev_i = j;
          }
        }
      }
    for (int v = 0; v < V; ++v)
      for (int i = 0; i < int(dp[size_t(v)].size()); ++i) {
        const double c = dp[size_t(v)][size_t(i)].cost + (V - 1 - v) * o.miss_cost;  // levels below missing
        if (!(c < best_cost)) continue;
        best_cost = c, best_scale = s;
        best_chosen.assign(size_t(V), -1);
        for (int cv = v, ci = i; cv >= 0;) {
          best_chosen[size_t(cv)] = ci;
          const Node& n = dp[size_t(cv)][size_t(ci)];
          cv = n.prev_v, ci = n.prev_i;
        }
      }
  }
  if (best_chosen.empty()) return out;

  out.decoded = true;
  out.cost = best_cost;
  out.scale = best_scale;
  out.chosen = best_chosen;
  std::vector<int> kept;
  for (int v = 0; v < V; ++v) {
    out.centres[size_t(v)] = out.chosen[size_t(v)] >= 0 ? candidates[size_t(v)][size_t(out.chosen[size_t(v)])].p : Point2{NAN, NAN};
    if (out.chosen[size_t(v)] >= 0) kept.push_back(v);
  }
  // Missing levels: between two decoded ones, the prior's steps with the residual shared in
  // proportion to the expected length; before the first or after the last, the prior's steps.
  const double s = out.scale;
  for (int v = 0; v < V; ++v) {
    if (out.chosen[size_t(v)] >= 0) continue;
    auto above = std::find_if(kept.rbegin(), kept.rend(), [v](int k) { return k < v; });
    auto below = std::find_if(kept.begin(), kept.end(), [v](int k) { return k > v; });
    Point2& c = out.centres[size_t(v)];
    if (above != kept.rend() && below != kept.end()) {
      const int a = *above, b = *below;
      const Point2 &pa = out.centres[size_t(a)], &pb = out.centres[size_t(b)];
      const Span to_v = span_of(prior, a, v), whole = span_of(prior, a, b);
      const double t = to_v.length() / whole.length();
      c = {pa[0] + s * to_v.mean[0] + t * (pb[0] - pa[0] - s * whole.mean[0]),
           pa[1] + s * to_v.mean[1] + t * (pb[1] - pa[1] - s * whole.mean[1])};
    } else if (below != kept.end()) {
      const Span span = span_of(prior, v, *below);
      const Point2& pb = out.centres[size_t(*below)];
      c = {pb[0] - s * span.mean[0], pb[1] - s * span.mean[1]};
    } else if (above != kept.rend()) {
      const Span span = span_of(prior, *above, v);
      const Point2& pa = out.centres[size_t(*above)];
      c = {pa[0] + s * span.mean[0], pa[1] + s * span.mean[1]};
    }
  }
  return out;
}

}  // namespace sm
