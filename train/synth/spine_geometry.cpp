// Sampling the anatomy of a synthetic lateral lumbar radiograph (see spine_geometry.h).
// Construction: the S1 endplate is placed at the origin with its tilt -SS; each vertebra above
// stands on the disc below it. Endplate direction u(θ) = (cos θ, -sin θ) (y down, anterior +x),
// cranial normal n(θ) = (-sin θ, -cos θ). Total rotation from S1 to the L1 superior endplate is
// the sampled L1–S1 lordosis, spread over discs and vertebral wedging, so the generated angles
// are exact by construction (then pathology perturbs them and the labels follow the corners).
#include "train/synth/spine_geometry.h"

#include <algorithm>
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

}  // namespace

double endplate_angle_deg(Vec2 a, Vec2 p) { return std::atan2(-(a[1] - p[1]), a[0] - p[0]) / kDeg; }

SpineGeometry spine_sample(Rng& rng) {
  SpineGeometry g;
  // Sacral slope and L1–S1 lordosis (targets: SS median ~42°, 15–65°; LL median ~50°, 15–85°).
  g.sacral_slope_deg = clamp_normal(rng, 42.0, 9.0, 15.0, 65.0);
  g.lordosis_deg = std::clamp(8.0 + g.sacral_slope_deg + rng.normal(0.0, 10.0), 15.0, 85.0);
  g.pelvic_tilt_deg = clamp_normal(rng, 13.0, 7.0, -5.0, 35.0);
  const double scale = rng.uniform(0.85, 1.15);  // patient size

  // Share of the lordosis per segment L1/2 .. L5/S1 (discs and bodies together), jittered.
  double share[5] = {0.07, 0.12, 0.18, 0.26, 0.37}, total = 0;
  for (double& s : share) total += s *= rng.uniform(0.6, 1.4);
  const double disc_mm[5] = {8.0, 9.5, 10.5, 11.5, 11.0};  // L1/2 .. L5/S1
  const double depth_mm[5] = {38, 40, 42, 44, 45}, height_mm[5] = {26, 27, 28, 28, 27};

  // Pathology choices (see docs/synthetic.md for the probabilities).
  int listhesis = rng.bernoulli(0.12) ? (rng.bernoulli(0.65) ? 4 : 3) : -1;  // L5 on S1 or L4 on L5
  double listhesis_frac = rng.uniform(0.1, 0.35);
  int fracture = rng.bernoulli(0.10) ? int(rng.below(4)) : -1;  // L1..L4
  double fracture_frac = rng.uniform(0.2, 0.45);
  int narrowed[2] = {-1, -1};
  if (rng.bernoulli(0.2)) narrowed[0] = 2 + int(rng.below(3));
  if (rng.bernoulli(0.08)) narrowed[1] = int(rng.below(5));
  bool osteo = rng.bernoulli(0.25), doubles = rng.bernoulli(0.2), screws = rng.bernoulli(0.08);
  int screw_top = 2 + int(rng.below(2)), screw_levels = 2 + int(rng.below(2));

  g.s1_sup_post = {0.0, 0.0};
  double s1_depth = clamp_normal(rng, 44.0, 3.0, 36.0, 52.0) * scale;
  double theta = -g.sacral_slope_deg;
  g.s1_sup_ant = add(g.s1_sup_post, dir(theta), s1_depth);
  g.pathology.clear();

  // Chain L5 -> L1 upward.
  std::vector<VertebraShape> lumbar;
  Vec2 below_post = g.s1_sup_post, below_ant = g.s1_sup_ant;
  double below_theta = theta;
  for (int k = 4; k >= 0; --k) {  // k = 4 is L5, its disc is L5/S1 (segment index 4)
    double seg = g.lordosis_deg * share[k] / total;
    double wedge = seg * rng.uniform(0.15, 0.4);  // body part of the segment's lordosis
    double disc_angle = seg - wedge;
    double disc = disc_mm[k] * scale * rng.uniform(0.8, 1.2);
    if (k == narrowed[0] || k == narrowed[1]) {
      disc *= rng.uniform(0.3, 0.6);
      g.pathology.push_back("narrowed_disc " + std::string(k == 4 ? "L5/S1" : "L" + std::to_string(k + 1) + "/L" + std::to_string(k + 2)));
    }
    double theta_inf = below_theta + disc_angle;
    Vec2 m = add(mid(below_post, below_ant), up(below_theta + 0.5 * disc_angle), disc);
    double depth = depth_mm[k] * scale * rng.uniform(0.93, 1.07);
    if (k == listhesis) {  // anterior slip of this vertebra on the one below
      m = add(m, dir(below_theta), listhesis_frac * depth);
      g.pathology.push_back("spondylolisthesis L" + std::to_string(k + 1));
    }
    VertebraShape v = body_build("L" + std::to_string(k + 1), m, theta_inf, wedge, depth,
                                 height_mm[k] * scale * rng.uniform(0.92, 1.08));
    v.concavity_mm = rng.uniform(0.3, 1.8) * scale;
    if (k == fracture) {  // anterior collapse: the superior anterior corner drops toward the inferior one
      v.corners[0] = add(v.corners[0], {v.corners[3][0] - v.corners[0][0], v.corners[3][1] - v.corners[0][1]}, fracture_frac);
      v.wedge_fracture = true;
      g.pathology.push_back("wedge_fracture " + v.name);
    }
    if (osteo && rng.bernoulli(0.5)) v.osteophytes = true, v.spur_mm = rng.uniform(2.0, 7.0);
    if (doubles && rng.bernoulli(0.4)) v.double_contour = true, v.double_offset_mm = rng.uniform(1.5, 4.0);
    v.screw = screws && k + 1 >= screw_top && k + 1 < screw_top + screw_levels;
    lumbar.push_back(v);
    below_ant = v.corners[0], below_post = v.corners[1];
    below_theta = endplate_angle_deg(below_ant, below_post);
  }
  if (osteo) g.pathology.push_back("osteophytes");
  if (doubles) g.pathology.push_back("double_endplates");
  if (screws) g.pathology.push_back("pedicle_screws L" + std::to_string(screw_top) + "-L" + std::to_string(std::min(5, screw_top + screw_levels - 1)));

  // T12 and T11 above L1: thoracolumbar junction, turning slowly kyphotic.
  std::vector<VertebraShape> thoracic;
  for (int t = 0; t < 2; ++t) {
    double disc_angle = rng.normal(-3.0, 2.5);
    double disc = 6.5 * scale * rng.uniform(0.8, 1.2);
    Vec2 m = add(mid(below_post, below_ant), up(below_theta + 0.5 * disc_angle), disc);
    VertebraShape v = body_build(t == 0 ? "T12" : "T11", m, below_theta + disc_angle, rng.normal(-1.5, 1.5),
                                 (35.0 - 2 * t) * scale, (24.0 - t) * scale);
    v.concavity_mm = rng.uniform(0.3, 1.5) * scale;
    thoracic.push_back(v);
    below_ant = v.corners[0], below_post = v.corners[1];
    below_theta = endplate_angle_deg(below_ant, below_post);
  }
  g.vertebrae = {thoracic[1], thoracic[0]};
  for (int k = 4; k >= 0; --k) g.vertebrae.push_back(lumbar[size_t(k)]);
  g.first_lumbar = 2;

  // Sacrum: five segments going caudally, narrowing and curving posteriorly (kyphotic).
  Vec2 post = g.s1_sup_post, ant = g.s1_sup_ant;
  double th = theta;
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

  // Femoral heads: hip axis at distance ~ 95 mm from the S1 endplate midpoint, pelvic tilt PT from
  // the vertical (anterior when PT > 0), so that pelvic incidence = PT + SS.
  Vec2 s1_mid = mid(g.s1_sup_post, g.s1_sup_ant);
  double dist = clamp_normal(rng, 95.0, 9.0, 70.0, 125.0) * scale;
  Vec2 hip = add(s1_mid, {std::sin(g.pelvic_tilt_deg * kDeg), std::cos(g.pelvic_tilt_deg * kDeg)}, dist);
  for (int i = 0; i < 2; ++i) {  // the two heads project apart (pelvic rotation, divergent beam)
    g.femoral_head[size_t(i)] = add(hip, {rng.normal(0.0, 4.0) * (i ? 1 : -1), rng.normal(0.0, 3.0) * (i ? 1 : -1)});
    g.femoral_radius[size_t(i)] = 23.0 * scale * (i ? rng.uniform(1.02, 1.08) : 1.0);
  }
  return g;
}

}  // namespace sm::synth
