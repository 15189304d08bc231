// Sampling the anatomy of a synthetic lateral lumbar radiograph (see spine_geometry.h).
// Construction: the S1 endplate is placed at the origin with its tilt -SS; each vertebra above
// stands on the disc below it. Endplate direction u(θ) = (cos θ, -sin θ) (y down, anterior +x),
// cranial normal n(θ) = (-sin θ, -cos θ). Total rotation from S1 to the L1 superior endplate is
// the sampled L1–S1 lordosis, spread over discs and vertebral wedging, so the generated angles
// are exact by construction (then pathology perturbs them and the labels follow the corners).
#include "train/synth/spine_geometry.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace sm::synth {

namespace {

constexpr double kDeg = M_PI / 180.0;

Vec2 dir(double theta_deg) { return {std::cos(theta_deg * kDeg), -std::sin(theta_deg * kDeg)}; }
Vec2 up(double theta_deg) { return {-std::sin(theta_deg * kDeg), -std::cos(theta_deg * kDeg)}; }
Vec2 add(Vec2 a, Vec2 b, double s = 1.0) { return {a[0] + s * b[0], a[1] + s * b[1]}; }
Vec2 mid(Vec2 a, Vec2 b) { return {0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])}; }

double clamp_normal(Rng& rng, double mean, double sd, double lo, double hi) {
  return std::clamp(rng.normal(mean, sd), lo, hi);
}

// A vertebral body standing on inferior endplate midpoint m with tilt theta_inf.
VertebraShape body_build(const std::string& name, Vec2 m, double theta_inf, double wedge_deg, double depth,
                         double height) {
  VertebraShape v;
  v.name = name;
  double theta_sup = theta_inf + wedge_deg;
  Vec2 ui = dir(theta_inf), us = dir(theta_sup);
  Vec2 ms = add(m, up(theta_inf + 0.5 * wedge_deg), height);
  v.corners = {add(ms, us, 0.5 * depth), add(ms, us, -0.5 * depth), add(m, ui, -0.5 * depth), add(m, ui, 0.5 * depth)};
  return v;
}

// The pathology of one spine, drawn before its geometry (docs/synthetic.md gives the
// probabilities). Indices count lumbar levels from 0 (L1) to 4 (L5).
struct PathologyPlan {
  int listhesis = -1;          // L5 on S1 (4) or L4 on L5 (3)
  double listhesis_frac = 0;   // slip as a fraction of the body's depth
  int fracture = -1;           // L1..L4
  double fracture_frac = 0;    // anterior collapse, fraction of the anterior wall
  int narrowed[2] = {-1, -1};  // discs below these levels
  bool osteo = false, doubles = false, screws = false;
  int screw_top = 0, screw_levels = 0;
};

PathologyPlan pathology_plan_sample(Rng& rng) {
  PathologyPlan p;
  p.listhesis = rng.bernoulli(0.12) ? (rng.bernoulli(0.65) ? 4 : 3) : -1;
  p.listhesis_frac = rng.uniform(0.1, 0.35);
  p.fracture = rng.bernoulli(0.10) ? int(rng.below(4)) : -1;
  p.fracture_frac = rng.uniform(0.2, 0.45);
  if (rng.bernoulli(0.2)) p.narrowed[0] = 2 + int(rng.below(3));
  if (rng.bernoulli(0.08)) p.narrowed[1] = int(rng.below(5));
  p.osteo = rng.bernoulli(0.25), p.doubles = rng.bernoulli(0.2), p.screws = rng.bernoulli(0.08);
  p.screw_top = 2 + int(rng.below(2)), p.screw_levels = 2 + int(rng.below(2));
  return p;
}

// Each segment's share of the lordosis, L1/2 .. L5/S1 (discs and bodies together), jittered:
// segment k takes weight[k] / total of it.
struct LordosisShares {
  std::array<double, 5> weight = {0.07, 0.12, 0.18, 0.26, 0.37};
  double total = 0;
};

LordosisShares lordosis_shares_sample(Rng& rng) {
  LordosisShares sh;
  for (double& w : sh.weight) sh.total += w *= rng.uniform(0.6, 1.4);
  return sh;
}

// The top endplate of the last vertebra built: the next one stands on it.
struct Endplate {
  Vec2 post, ant;
  double theta = 0;
};

// L5 up to L1 on the S1 endplate; returns them in that order (L5 first). Segment k's share of
// the lordosis is split between its disc and the body's wedging, then pathology bends it.
std::vector<VertebraShape> lumbar_chain_build(Rng& rng, SpineGeometry& g, const LordosisShares& share,
                                              const PathologyPlan& p, double scale, Endplate& below) {
  const double disc_mm[5] = {8.0, 9.5, 10.5, 11.5, 11.0};  // L1/2 .. L5/S1
  const double depth_mm[5] = {38, 40, 42, 44, 45}, height_mm[5] = {26, 27, 28, 28, 27};
  std::vector<VertebraShape> lumbar;
  for (int k = 4; k >= 0; --k) {  // k = 4 is L5, its disc is L5/S1 (segment index 4)
    double seg = g.lordosis_deg * share.weight[size_t(k)] / share.total;
    double wedge = seg * rng.uniform(0.15, 0.4);  // body part of the segment's lordosis
    double disc_angle = seg - wedge;
    double disc = disc_mm[k] * scale * rng.uniform(0.8, 1.2);
    if (k == p.narrowed[0] || k == p.narrowed[1]) {
      disc *= rng.uniform(0.3, 0.6);
      g.pathology.push_back("narrowed_disc " + std::string(k == 4 ? "L5/S1" : "L" + std::to_string(k + 1) + "/L" + std::to_string(k + 2)));
    }
    double theta_inf = below.theta + disc_angle;
    Vec2 m = add(mid(below.post, below.ant), up(below.theta + 0.5 * disc_angle), disc);
    double depth = depth_mm[k] * scale * rng.uniform(0.93, 1.07);
    if (k == p.listhesis) {  // anterior slip of this vertebra on the one below
      m = add(m, dir(below.theta), p.listhesis_frac * depth);
      g.pathology.push_back("spondylolisthesis L" + std::to_string(k + 1));
    }
    VertebraShape v = body_build("L" + std::to_string(k + 1), m, theta_inf, wedge, depth,
                                 height_mm[k] * scale * rng.uniform(0.92, 1.08));
    v.concavity_mm = rng.uniform(0.3, 1.8) * scale;
    if (k == p.fracture) {  // anterior collapse: the superior anterior corner drops toward the inferior one
      v.corners[0] = add(v.corners[0], {v.corners[3][0] - v.corners[0][0], v.corners[3][1] - v.corners[0][1]}, p.fracture_frac);
      v.wedge_fracture = true;
      g.pathology.push_back("wedge_fracture " + v.name);
    }
    if (p.osteo && rng.bernoulli(0.5)) v.osteophytes = true, v.spur_mm = rng.uniform(2.0, 7.0);
    if (p.doubles && rng.bernoulli(0.4)) v.double_contour = true, v.double_offset_mm = rng.uniform(1.5, 4.0);
    v.screw = p.screws && k + 1 >= p.screw_top && k + 1 < p.screw_top + p.screw_levels;
    lumbar.push_back(v);
    below = {v.corners[1], v.corners[0], endplate_angle_deg(v.corners[0], v.corners[1])};
  }
  return lumbar;
}

// T12 then T11 above L1: the thoracolumbar junction, turning slowly kyphotic.
std::vector<VertebraShape> thoracic_pair_build(Rng& rng, double scale, Endplate& below) {
  std::vector<VertebraShape> thoracic;
  for (int t = 0; t < 2; ++t) {
    double disc_angle = rng.normal(-3.0, 2.5);
    double disc = 6.5 * scale * rng.uniform(0.8, 1.2);
    Vec2 m = add(mid(below.post, below.ant), up(below.theta + 0.5 * disc_angle), disc);
    VertebraShape v = body_build(t == 0 ? "T12" : "T11", m, below.theta + disc_angle, rng.normal(-1.5, 1.5),
                                 (35.0 - 2 * t) * scale, (24.0 - t) * scale);
    v.concavity_mm = rng.uniform(0.3, 1.5) * scale;
    thoracic.push_back(v);
    below = {v.corners[1], v.corners[0], endplate_angle_deg(v.corners[0], v.corners[1])};
  }
  return thoracic;
}

// Sacrum: five segments going caudally from the S1 endplate, narrowing and curving posteriorly
// (kyphotic); four corners each.
void sacrum_build(Rng& rng, SpineGeometry& g, double s1_depth, double scale) {
  Vec2 post = g.s1_sup_post, ant = g.s1_sup_ant;
  double th = -g.sacral_slope_deg;
  const double seg_len[5] = {28, 22, 18, 14, 11}, seg_depth[5] = {1.0, 0.8, 0.62, 0.47, 0.35};
  for (int s = 0; s < 5; ++s) {
    double next_th = th - rng.uniform(6.0, 14.0);  // curving: caudal segments tilt further
    Vec2 mtop = mid(post, ant);
    Vec2 mbot = add(mtop, up(0.5 * (th + next_th)), -seg_len[s] * scale);
    double d = s1_depth * (s + 1 < 5 ? seg_depth[s + 1] : 0.25);
    Vec2 bpost = add(mbot, dir(next_th), -0.55 * d), bant = add(mbot, dir(next_th), 0.45 * d);
    g.sacrum.insert(g.sacrum.end(), {ant, post, bpost, bant});
    post = bpost, ant = bant, th = next_th;
  }
}

// Femoral heads: hip axis at distance ~ 95 mm from the S1 endplate midpoint, pelvic tilt PT from
// the vertical (anterior when PT > 0), so that pelvic incidence = PT + SS.
void femoral_heads_place(Rng& rng, SpineGeometry& g, double scale) {
  Vec2 s1_mid = mid(g.s1_sup_post, g.s1_sup_ant);
  double dist = clamp_normal(rng, 95.0, 9.0, 70.0, 125.0) * scale;
  Vec2 hip = add(s1_mid, {std::sin(g.pelvic_tilt_deg * kDeg), std::cos(g.pelvic_tilt_deg * kDeg)}, dist);
  for (int i = 0; i < 2; ++i) {  // the two heads project apart (pelvic rotation, divergent beam)
    g.femoral_head[size_t(i)] = add(hip, {rng.normal(0.0, 4.0) * (i ? 1 : -1), rng.normal(0.0, 3.0) * (i ? 1 : -1)});
    g.femoral_radius[size_t(i)] = 23.0 * scale * (i ? rng.uniform(1.02, 1.08) : 1.0);
  }
}

}  // namespace

double endplate_angle_deg(Vec2 a, Vec2 p) { return std::atan2(-(a[1] - p[1]), a[0] - p[0]) / kDeg; }

// Every random draw happens in a fixed order (angles, size, lordosis shares, pathology, S1,
// lumbar, thoracic, sacrum, hips): the same generator state gives the same spine.
SpineGeometry spine_sample(Rng& rng) {
  SpineGeometry g;
  // Sacral slope and L1–S1 lordosis (targets: SS median ~42°, 15–65°; LL median ~50°, 15–85°).
  g.sacral_slope_deg = clamp_normal(rng, 42.0, 9.0, 15.0, 65.0);
  g.lordosis_deg = std::clamp(8.0 + g.sacral_slope_deg + rng.normal(0.0, 10.0), 15.0, 85.0);
  g.pelvic_tilt_deg = clamp_normal(rng, 13.0, 7.0, -5.0, 35.0);
  const double scale = rng.uniform(0.85, 1.15);  // patient size
  const LordosisShares share = lordosis_shares_sample(rng);
  const PathologyPlan plan = pathology_plan_sample(rng);

  g.s1_sup_post = {0.0, 0.0};
  const double s1_depth = clamp_normal(rng, 44.0, 3.0, 36.0, 52.0) * scale;
  g.s1_sup_ant = add(g.s1_sup_post, dir(-g.sacral_slope_deg), s1_depth);
  g.pathology.clear();

  Endplate top{g.s1_sup_post, g.s1_sup_ant, -g.sacral_slope_deg};
  const std::vector<VertebraShape> lumbar = lumbar_chain_build(rng, g, share, plan, scale, top);  // L5 .. L1
  if (plan.osteo) g.pathology.push_back("osteophytes");
  if (plan.doubles) g.pathology.push_back("double_endplates");
  if (plan.screws)
    g.pathology.push_back("pedicle_screws L" + std::to_string(plan.screw_top) + "-L" +
                          std::to_string(std::min(5, plan.screw_top + plan.screw_levels - 1)));
  const std::vector<VertebraShape> thoracic = thoracic_pair_build(rng, scale, top);  // T12, T11
  g.vertebrae = {thoracic[1], thoracic[0]};
  for (int k = 4; k >= 0; --k) g.vertebrae.push_back(lumbar[size_t(k)]);
  g.first_lumbar = 2;

  sacrum_build(rng, g, s1_depth, scale);
  femoral_heads_place(rng, g, scale);
  return g;
}

}  // namespace sm::synth
