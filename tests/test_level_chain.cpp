// Level identity by construction (issue 19 §1–2): heatmap modes, the level prior, the ordered
// chain decoding on constructed heatmaps (a missing peak, a double peak, two swapped peaks, a
// film cut at the top), the one-vertebra quad check on planted mixed quads and on every
// annotated vertebra of synthetic films (the AASCE films: test_aasce), and both inside the
// pipeline.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "layers/dsnt.h"
#include "layers/heatmap_peaks.h"
#include "models/geometry/level_chain.h"
#include "models/geometry/quad_check.h"
#include "models/pipeline/pipeline.h"
#include "models/pipeline/pipeline_levels.h"
#include "pipeline_oracle.h"
#include "train/data/dataset.h"
#include "train/data/refine_samples.h"
#include "train/synth/synth.h"

using namespace sm;

namespace {

constexpr int kW = 32, kH = 48, kV = 6;

// True level centres in heatmap cells: a gently curved chain, 6 cells apart.
std::vector<Point2> chain_truth(double top = 8.0) {
  std::vector<Point2> c;
  for (int v = 0; v < kV; ++v) c.push_back({15.0 + 1.5 * std::sin(v * 0.6), top + 6.0 * v});
  return c;
}

// A heatmap channel: normalised Gaussian blobs (σ = 1 cell) at `at` with weights `w`, plus a
// uniform floor `floor` of the total.
std::vector<float> blobs(const std::vector<Point2>& at, const std::vector<double>& w, double floor = 0.0) {
  std::vector<double> m(size_t(kW * kH), floor / (kW * kH));
  for (size_t b = 0; b < at.size(); ++b) {
    double sum = 0;
    std::vector<double> g(m.size());
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x) sum += g[size_t(y * kW + x)] = std::exp(-0.5 * (std::pow(x - at[b][0], 2) + std::pow(y - at[b][1], 2)));
    for (size_t k = 0; k < m.size(); ++k) m[k] += (1 - floor) * w[b] * g[k] / sum;
  }
  return std::vector<float>(m.begin(), m.end());
}

std::vector<LevelCandidate> modes_of(const std::vector<float>& map) {
  std::vector<LevelCandidate> c;
  for (const HeatmapPeak& p : heatmap_channel_peaks(map.data(), kH, kW)) c.push_back({{p.x, p.y}, p.mass});
  return c;
}

// A prior fitted on chains like the truth's (straight and curved, shifted), as training would.
LevelPrior prior_for_tests() {
  std::vector<std::vector<Point2>> films;
  for (int f = 0; f < 20; ++f) {
    std::vector<Point2> c;
    for (int v = 0; v < kV; ++v) c.push_back({100.0 + f + 8.0 * std::sin(v * 0.6 + f * 0.1), 50.0 + (30.0 + f) * v});
    films.push_back(c);
  }
  return level_prior_fit(films);
}

double dist(const Point2& a, const Point2& b) { return std::hypot(a[0] - b[0], a[1] - b[1]); }

void check_in_order(const LevelDecode& d) {
  for (int v = 0; v + 1 < kV; ++v) CHECK(d.centres[size_t(v + 1)][1] > d.centres[size_t(v)][1] + 2.0);
}

}  // namespace

TEST_CASE("heatmap modes: two blobs give two modes at their centres with their masses, strongest first") {
  const std::vector<float> m = blobs({{10.3, 12.0}, {20.0, 30.6}}, {0.35, 0.65});
  const auto p = heatmap_channel_peaks(m.data(), kH, kW, 3, 2);
  REQUIRE(p.size() >= 2);
  CHECK(p[0].x == doctest::Approx(20.0).epsilon(0.02));
  CHECK(p[0].y == doctest::Approx(30.6).epsilon(0.02));
  CHECK(p[0].mass == doctest::Approx(0.65).epsilon(0.05));
  CHECK(p[1].x == doctest::Approx(10.3).epsilon(0.02));
  CHECK(p[1].mass == doctest::Approx(0.35).epsilon(0.05));
  // A flat map has one mode (its first cell) holding only its window's share.
  const std::vector<float> flat(size_t(kW * kH), 1.f / (kW * kH));
  const auto f = heatmap_channel_peaks(flat.data(), kH, kW, 3, 2);
  REQUIRE(f.size() == 1);
  CHECK(f[0].mass < 0.02);
}

TEST_CASE("level prior: fitted steps point down the chain, survive JSON, and bad priors are refused") {
  const LevelPrior p = prior_for_tests();
  REQUIRE(p.mean.size() == size_t(kV - 1));
  CHECK(p.films == 20);
  for (const Point2& m : p.mean) {
    CHECK(m[1] == doctest::Approx(1.0).epsilon(0.05));
    CHECK(std::fabs(m[0]) < 1e-9);  // mirrored copies make x symmetric
  }
  const LevelPrior q = level_prior_from_json(level_prior_to_json(p), kV, "test");
  CHECK(q.mean[2][1] == doctest::Approx(p.mean[2][1]));
  CHECK(q.cov[2][2] == doctest::Approx(p.cov[2][2]));
  CHECK_THROWS_WITH(level_prior_from_json(level_prior_to_json(p), kV + 1, "m.json"), doctest::Contains("need 6"));
  nlohmann::json bad = level_prior_to_json(p);
  bad["steps"][0][2] = -1.0;
  CHECK_THROWS_WITH(level_prior_from_json(bad, kV, "m.json"), doctest::Contains("positive definite"));
  bad = level_prior_to_json(p);
  bad["extra"] = 1;
  CHECK_THROWS_WITH(level_prior_from_json(bad, kV, "m.json"), doctest::Contains("unknown key"));
  CHECK_THROWS(level_prior_fit({{Point2{0, 0}, Point2{NAN, NAN}}}));
}

TEST_CASE("level chain: clean heatmaps decode to their peaks, in order") {
  const auto truth = chain_truth();
  std::vector<std::vector<LevelCandidate>> cand;
  for (int v = 0; v < kV; ++v) cand.push_back(modes_of(blobs({truth[size_t(v)]}, {1.0})));
  const LevelDecode d = level_chain_decode(cand, prior_for_tests());
  REQUIRE(d.decoded);
  for (int v = 0; v < kV; ++v) {
    CHECK(d.chosen[size_t(v)] == 0);
    CHECK(dist(d.centres[size_t(v)], truth[size_t(v)]) < 0.1);
  }
  CHECK(d.scale == doctest::Approx(6.0).epsilon(0.15));
}

TEST_CASE("level chain: a missing peak is declared missing and placed between its neighbours") {
  const auto truth = chain_truth();
  std::vector<std::vector<LevelCandidate>> cand;
  for (int v = 0; v < kV; ++v) {
    // Level 2's heatmap is diffuse: no mode worth a level.
    const std::vector<float> m = v == 2 ? std::vector<float>(size_t(kW * kH), 1.f / (kW * kH)) : blobs({truth[size_t(v)]}, {1.0});
    cand.push_back(modes_of(m));
  }
  const LevelDecode d = level_chain_decode(cand, prior_for_tests());
  REQUIRE(d.decoded);
  CHECK(d.chosen[2] == -1);
  for (int v : {0, 1, 3, 4, 5}) CHECK(d.chosen[size_t(v)] == 0);
  CHECK(dist(d.centres[2], truth[2]) < 1.5);  // a quarter of the 6-cell spacing
  check_in_order(d);
}

TEST_CASE("level chain: a double peak takes the mode that fits the chain, not the stronger one") {
  const auto truth = chain_truth();
  std::vector<std::vector<LevelCandidate>> cand;
  for (int v = 0; v < kV; ++v) {
    // Level 3 hesitates: 55 % on level 4's vertebra, 45 % on its own.
    const std::vector<float> m = v == 3 ? blobs({truth[4], truth[3]}, {0.55, 0.45}) : blobs({truth[size_t(v)]}, {1.0});
    cand.push_back(modes_of(m));
  }
  REQUIRE(dist(cand[3][0].p, truth[4]) < 0.5);  // the stronger mode is the wrong level
  const LevelDecode d = level_chain_decode(cand, prior_for_tests());
  REQUIRE(d.decoded);
  CHECK(d.chosen[3] == 1);
  CHECK(dist(d.centres[3], truth[3]) < 0.5);
  check_in_order(d);
}

TEST_CASE("level chain: two swapped peaks are put back in order") {
  const auto truth = chain_truth();
  std::vector<std::vector<LevelCandidate>> cand;
  for (int v = 0; v < kV; ++v) {
    // Levels 1 and 2 each put 60 % on the other's vertebra and 40 % on their own.
    std::vector<float> m = blobs({truth[size_t(v)]}, {1.0});
    if (v == 1) m = blobs({truth[2], truth[1]}, {0.6, 0.4});
    if (v == 2) m = blobs({truth[1], truth[2]}, {0.6, 0.4});
    cand.push_back(modes_of(m));
  }
  const LevelDecode d = level_chain_decode(cand, prior_for_tests());
  REQUIRE(d.decoded);
  for (int v = 0; v < kV; ++v) CHECK(dist(d.centres[size_t(v)], truth[size_t(v)]) < 0.5);
  // With only the swapped modes (no second mode), the chain stays in order all the same: one of
  // the two is declared missing rather than decoded backwards.
  cand[1] = modes_of(blobs({truth[2]}, {1.0}));
  cand[2] = modes_of(blobs({truth[1]}, {1.0}));
  const LevelDecode e = level_chain_decode(cand, prior_for_tests());
  REQUIRE(e.decoded);
  CHECK((e.chosen[1] == -1 || e.chosen[2] == -1));
  check_in_order(e);
}

TEST_CASE("level chain: a film cut at the top places the lost levels above it, never two on one spot") {
  const auto truth = chain_truth(-4.0);  // levels 0 (y = −4) and 1 (y = 2) at or off the top edge
  std::vector<std::vector<LevelCandidate>> cand;
  for (int v = 0; v < kV; ++v) {
    // Off-film levels: the networks answer at the edge, both channels on the same cells.
    const Point2 at = truth[size_t(v)][1] < 3 ? Point2{truth[size_t(v)][0], 0.0} : truth[size_t(v)];
    cand.push_back(modes_of(blobs({at}, {v < 2 ? 0.6 : 1.0}, v < 2 ? 0.4 : 0.0)));
  }
  const LevelDecode d = level_chain_decode(cand, prior_for_tests());
  REQUIRE(d.decoded);
  check_in_order(d);
  CHECK(d.chosen[0] == -1);
  CHECK(d.centres[0][1] < 0);  // above the film
  for (int v = 2; v < kV; ++v) CHECK(dist(d.centres[size_t(v)], truth[size_t(v)]) < 0.5);
}

TEST_CASE("level chain: without a prior or candidates nothing is decoded and the strongest modes stand") {
  const auto truth = chain_truth();
  std::vector<std::vector<LevelCandidate>> cand;
  for (int v = 0; v < kV; ++v) cand.push_back(modes_of(blobs({truth[size_t(v)]}, {1.0})));
  const LevelDecode d = level_chain_decode(cand, LevelPrior{});
  CHECK_FALSE(d.decoded);
  CHECK(dist(d.centres[3], truth[3]) < 0.1);
  const LevelDecode e = level_chain_decode(std::vector<std::vector<LevelCandidate>>(size_t(kV)), prior_for_tests());
  CHECK_FALSE(e.decoded);
}

// ---- one vertebra per quadrilateral --------------------------------------------------------------

namespace {

struct QuadCase {
  const Schema& schema = schema_builtin("lumbar-lateral");
  SynthSample sample = synth_generate(schema, 7, 3, SynthOptions{384});
  std::vector<Point2> gt = sample.annotation.points;
  std::vector<Point2> centres = vertebra_centres(schema, gt);
  std::string check(const std::vector<Point2>& pts, int v) const {
    const std::vector<double> spacing = level_spacings(centres);
    return quad_check(schema, pts, v, vertebra_size(schema, gt, v == 0 ? 1 : v - 1), centres[size_t(v)], spacing[size_t(v)]);
  }
  // The landmark index of vertebra v's corner named `corner` (e.g. "sup_ant").
  int corner(int v, const std::string& c) const {
    const std::string name = schema.vertebrae[size_t(v)].name + "." + c;
    const auto it = std::find(schema.landmarks.begin(), schema.landmarks.end(), name);
    REQUIRE(it != schema.landmarks.end());
    return int(it - schema.landmarks.begin());
  }
};

}  // namespace

TEST_CASE("quad check: true vertebrae pass; mixed, crossed, shrunk and shifted quads fail with the reason") {
  QuadCase q;
  for (int v = 0; v < 5; ++v) CHECK(q.check(q.gt, v) == "");
  // Mixed: L2's anterior corners from L3 (the shape of a crop between two levels).
  std::vector<Point2> mixed = q.gt;
  mixed[size_t(q.corner(1, "sup_ant"))] = q.gt[size_t(q.corner(2, "sup_ant"))];
  mixed[size_t(q.corner(1, "inf_ant"))] = q.gt[size_t(q.corner(2, "inf_ant"))];
  CHECK(q.check(mixed, 1) == "corner_angle");
  // Crossed: two corners of one endplate swapped.
  std::vector<Point2> crossed = q.gt;
  std::swap(crossed[size_t(q.corner(2, "sup_ant"))], crossed[size_t(q.corner(2, "sup_post"))]);
  CHECK(q.check(crossed, 2) == "degenerate");
  // Shrunk to a third about its centre: the right shape, not the size of its neighbours.
  std::vector<Point2> small = q.gt;
  for (int i : q.schema.vertebra_landmarks(3))
    small[size_t(i)] = {q.centres[3][0] + (q.gt[size_t(i)][0] - q.centres[3][0]) / 3, q.centres[3][1] + (q.gt[size_t(i)][1] - q.centres[3][1]) / 3};
  CHECK(q.check(small, 3) == "size");
  // The whole of L3 moved onto L4's place: a perfect quad on the wrong level.
  std::vector<Point2> moved = q.gt;
  for (int i : q.schema.vertebra_landmarks(2))
    moved[size_t(i)] = {q.gt[size_t(i)][0] + q.centres[3][0] - q.centres[2][0], q.gt[size_t(i)][1] + q.centres[3][1] - q.centres[2][1]};
  CHECK(q.check(moved, 2) == "off_centre");
  // A missing corner.
  std::vector<Point2> lost = q.gt;
  lost[size_t(q.corner(4, "inf_post"))] = {NAN, NAN};
  CHECK(q.check(lost, 4) == "degenerate");
}

TEST_CASE("quad check: every annotated vertebra of 200 synthetic films passes") {
  const Schema& schema = schema_builtin("lumbar-lateral");
  ModelSpec spec = model_spec_preset(schema, "small");
  int failed = 0, total = 0;
  for (int i = 0; i < 200; ++i) {
    const SynthSample s = synth_generate(schema, 11, uint64_t(i), SynthOptions{256});
    for (const std::string& why : test::annotated_quads_check(spec, s.annotation.points)) {
      ++total;
      if (why.empty()) continue;
      ++failed;
      MESSAGE("synthetic film " << i << ": " << why);
    }
  }
  CHECK(total == 200 * schema.vertebra_count());
  CHECK(failed == 0);
}

// ---- both inside the pipeline --------------------------------------------------------------------

TEST_CASE("pipeline: a double detection peak is decoded in order, a mixed refined quad falls back to step 1 and is flagged") {
  const Schema& schema = schema_builtin("lumbar-lateral");
  ModelSpec spec = model_spec_preset(schema, "small");
  const SynthSample sample = synth_generate(schema, 31, 0, SynthOptions{384});
  const std::vector<Point2> gt = sample.annotation.points;
  const std::vector<Point2> centres = vertebra_centres(schema, gt);
  // The prior from synthetic films like this one.
  std::vector<std::vector<Point2>> films;
  for (int i = 0; i < 30; ++i) films.push_back(vertebra_centres(schema, synth_generate(schema, 5, uint64_t(i), SynthOptions{384}).annotation.points));
  spec.level_prior = level_prior_fit(films);
  auto oracle = std::make_shared<test::Oracle>(test::Oracle{schema, gt, {}, 4});
  // Detection: level L3 (index 2) answers a mean halfway to L4 with two modes, 55 % on L4.
  auto detect = [&](const Tensor& x, const StageQuery& q) {
    StageOutput o = oracle->step1(x, q, centres);
    const int w = int(x.shape()[3]), h = int(x.shape()[2]);
    o.peaks.assign(size_t(o.k), {});
    for (int v = 0; v < o.k; ++v) {
      auto at = [&](int u, double mass) {
        const Point2 in = letterbox_forward(*q.letterbox, centres[size_t(u)]);
        return HeatmapPeak{dsnt_normalise(in[0], w), dsnt_normalise(in[1], h), mass};
      };
      if (v == 2) {
        o.peaks[size_t(v)] = {at(3, 0.55), at(2, 0.45)};
        const Point2 mid{0.5 * (centres[2][0] + centres[3][0]), 0.5 * (centres[2][1] + centres[3][1])};
        const Point2 in = letterbox_forward(*q.letterbox, mid);
        o.coords[4] = dsnt_normalise(in[0], w), o.coords[5] = dsnt_normalise(in[1], h);
      } else {
        o.peaks[size_t(v)] = {at(v, 0.95)};
      }
    }
    return o;
  };
  auto coarse = [&](const Tensor& x, const StageQuery& q) { return oracle->step1(x, q, gt); };
  // Refinement: right, except L2 (index 1), whose anterior corners it places on L3's.
  auto refine = [&](const Tensor& x, const StageQuery& q) {
    StageOutput o = oracle->refine(x, q);
    for (size_t row = 0; row < q.crops->size(); ++row) {
      if ((*q.vertebrae)[row] != 1) continue;
      const auto idx1 = schema.vertebra_landmarks(1), idx2 = schema.vertebra_landmarks(2);
      for (size_t ch = 0; ch < idx1.size(); ++ch) {
        if (schema.landmarks[size_t(idx1[ch])].find("_ant") == std::string::npos) continue;  // "L2.sup_ant", "L2.inf_ant"
        const Point2 u = refine_crop_from_image((*q.crops)[row], (*q.mirrored)[row], gt[size_t(idx2[ch])]);
        o.coords[2 * (row * size_t(o.k) + ch)] = dsnt_normalise(u[0], (*q.crops)[row].size);
        o.coords[2 * (row * size_t(o.k) + ch) + 1] = dsnt_normalise(u[1], (*q.crops)[row].size);
      }
    }
    return o;
  };
  spec.quad_check = "fallback";
  const PipelineResult r = Pipeline(spec, detect, coarse, refine).run(sample.image);
  REQUIRE(r.level_source.size() == size_t(schema.vertebra_count()));
  CHECK(r.level_source[2] == LevelSource::Peak);
  CHECK(dist(r.centres[2], centres[2]) < 1e-6);
  for (int v : {0, 1, 3, 4, 5}) CHECK(r.level_source[size_t(v)] == LevelSource::Mean);
  CHECK(r.quad_check[1] == "corner_angle");
  for (int i : schema.vertebra_landmarks(1)) CHECK(dist(r.landmarks[size_t(i)], gt[size_t(i)]) < 1e-6);  // step 1 (= truth here)
  CHECK(std::count(r.flags.begin(), r.flags.end(), "quad_check_failed:L2:corner_angle") == 1);
  CHECK(std::count(r.flags.begin(), r.flags.end(), "level_redecoded:L3") == 1);
  CHECK(r.status == "review");
  for (int v : {0, 2, 3, 4}) CHECK(r.quad_check[size_t(v)] == "");
  // "retry" keeps the refined (mixed) corners and flags them; "off" neither checks nor flags.
  spec.quad_check = "retry";
  const PipelineResult k = Pipeline(spec, detect, coarse, refine).run(sample.image);
  CHECK(k.quad_check[1] == "corner_angle");
  CHECK(std::count(k.flags.begin(), k.flags.end(), "quad_check_failed:L2:corner_angle") == 1);
  const int ant = schema.vertebra_landmarks(1)[0];  // L2's first corner
  CHECK(dist(k.landmarks[size_t(ant)], gt[size_t(ant)]) + dist(k.landmarks[size_t(schema.vertebra_landmarks(1)[3])], gt[size_t(schema.vertebra_landmarks(1)[3])]) > 10);
  spec.quad_check = "off";
  const PipelineResult n = Pipeline(spec, detect, coarse, refine).run(sample.image);
  CHECK(std::none_of(n.flags.begin(), n.flags.end(), [](const std::string& f) { return f.rfind("quad_check_failed", 0) == 0; }));
}

// ---- refinement jitter bounded by the level spacing (issue 19 §3) --------------------------------

TEST_CASE("refinement jitter: a centre shift is shortened to the bound, direction kept; the local spacing is the nearer neighbour") {
  CropError e{0.3, -0.4, 0.1, 0.2};  // |shift| 0.5 of the side
  const CropError b = crop_error_shift_bound(e, 0.2);
  CHECK(std::hypot(b.dx, b.dy) == doctest::Approx(0.2));
  CHECK(b.dx / b.dy == doctest::Approx(e.dx / e.dy));
  CHECK(b.angle == e.angle);
  CHECK(b.log_scale == e.log_scale);
  const CropError same = crop_error_shift_bound(e, 0.6);
  CHECK(same.dx == e.dx);
  CHECK(same.dy == e.dy);
  const std::vector<Point2> centres{{0, 0}, {0, 10}, {0, 16}, {NAN, NAN}};
  const std::vector<double> spacings = level_spacings(centres);
  CHECK(spacings[0] == doctest::Approx(10));
  CHECK(spacings[1] == doctest::Approx(6));
  CHECK(spacings[2] == doctest::Approx(6));
  CHECK(std::isnan(spacings[3]));
  // With the default bound (0.35 of the spacing) a shifted crop centre stays nearer its own
  // vertebra than either neighbour, whatever the measured error.
  const double side = 20, spacing = 10;
  const CropError far = crop_error_shift_bound(CropError{0.0, 0.9, 0, 0}, RefineJitter{}.max_level_frac * spacing / side);
  CHECK(far.dy * side < 0.5 * spacing);
}
