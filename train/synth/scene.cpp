// Anatomy drawing for the synthetic lateral radiograph (see scene.h). Densities are relative
// attenuations: soft tissue ~0.25 per body thickness, cancellous bone 0.5, cortical rims +0.5,
// metal 3. Sizes are in mm and converted with the transform's scale.
#include "train/synth/scene.h"

#include <algorithm>
#include <cmath>

namespace sm::synth {

namespace {
Vec2 add(Vec2 a, Vec2 b, double s = 1.0) { return {a[0] + s * b[0], a[1] + s * b[1]}; }
Vec2 sub(Vec2 a, Vec2 b) { return {a[0] - b[0], a[1] - b[1]}; }
Vec2 mid(Vec2 a, Vec2 b) { return {0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])}; }
Vec2 unit(Vec2 v) {
  double n = std::max(1e-12, std::hypot(v[0], v[1]));
  return {v[0] / n, v[1] / n};
}
}  // namespace

Vec2 Similarity::vec(Vec2 v) const {
  double x = flip ? -v[0] : v[0], c = std::cos(angle), s = std::sin(angle);
  return {scale * (c * x - s * v[1]), scale * (s * x + c * v[1])};
}
Vec2 Similarity::apply(Vec2 p) const { return add(centre, vec(sub(p, origin))); }

namespace {

struct Drawer {
  Image& d;
  const Image& fine;
  const Similarity& T;
  Fill fill(float density, float rim = 0.f, double rim_mm = 1.0, float texture = 0.f, double edge_mm = 0.0) const {
    Fill f;
    f.density = density;
    f.rim = rim;
    f.rim_px = float(std::max(0.8, rim_mm * T.scale));
    f.texture = texture;
    f.tex = &fine;
    f.edge_px = float(std::max(1.0, edge_mm * T.scale));
    return f;
  }
  void poly(const std::vector<Vec2>& mm, const Fill& f, const std::vector<double>& bulge_mm = {}) {
    std::vector<Vec2> px;
    for (const Vec2& p : mm) px.push_back(T.apply(p));
    std::vector<double> b;
    for (double v : bulge_mm) b.push_back(v * T.scale);
    polygon_add(d, px, f, b);
  }
  void ellipse(Vec2 c, double rx, double ry, double ang, const Fill& f) {
    Vec2 ax = T.vec({std::cos(ang), std::sin(ang)});
    ellipse_add(d, T.apply(c), rx * T.scale, ry * T.scale, std::atan2(ax[1], ax[0]), f);
  }
  void capsule(Vec2 a, Vec2 b, double r, const Fill& f) { capsule_add(d, T.apply(a), T.apply(b), r * T.scale, f); }
};

void soft_tissue_draw(Drawer& dr, const SpineGeometry& g, Rng& rng) {
  const VertebraShape& l3 = g.vertebrae[size_t(g.first_lumbar + 2)];
  Vec2 ant = mid(l3.corners[0], l3.corners[3]), post = mid(l3.corners[1], l3.corners[2]);
  double front = rng.uniform(70, 180), back = rng.uniform(70, 120);  // skin to the spine, mm
  Vec2 c = {0.5 * (ant[0] + front + post[0] - back), ant[1] + rng.uniform(-40, 40)};
  double rx = 0.5 * (front + back + ant[0] - post[0]);
  dr.ellipse(c, rx, rng.uniform(300, 500), rng.normal(0, 0.08), dr.fill(float(rng.uniform(0.45, 0.9)), 0, 0, 0, 25));
  // Psoas and paraspinal muscle masses: broad faint bands along the spine.
  dr.ellipse(add(post, {-45, 0}), 30, 160, rng.normal(0, 0.1), dr.fill(0.06f, 0, 0, 0, 20));
  dr.ellipse(add(ant, {-10, 40}), 25, 140, 0.2 + rng.normal(0, 0.1), dr.fill(0.05f, 0, 0, 0, 20));
  // Bowel gas: dark blobs anterior to (and sometimes over) the spine.
  int n = int(rng.below(9));
  for (int i = 0; i < n; ++i) {
    Vec2 p = {ant[0] + rng.uniform(-25, 110), ant[1] + rng.uniform(-60, 140)};
    dr.ellipse(p, rng.uniform(5, 25), rng.uniform(4, 15), rng.uniform(0, M_PI), dr.fill(-float(rng.uniform(0.08, 0.25)), 0, 0, 0, 2));
  }
}

void pelvis_draw(Drawer& dr, const SpineGeometry& g, Rng& rng) {
  Vec2 s1 = mid(g.s1_sup_ant, g.s1_sup_post);
  for (int side = 0; side < 2; ++side) {  // iliac wings, the two sides projected apart
    Vec2 c = add(s1, {rng.uniform(-45, -5), rng.uniform(5, 35)});
    dr.ellipse(c, rng.uniform(55, 80), rng.uniform(45, 65), rng.uniform(-0.5, 0.3),
               dr.fill(float(rng.uniform(0.06, 0.14)), float(rng.uniform(0.04, 0.12)), 2.5, 0.1f, 3.0));
  }
  for (int i = 0; i < 2; ++i) {
    Vec2 h = g.femoral_head[size_t(i)];
    double r = g.femoral_radius[size_t(i)];
    dr.ellipse(add(h, {-2, -r * 0.3}), r * 1.5, r * 1.3, 0, dr.fill(0.05f, 0.08f, 3.0, 0.2f, 2.0));  // acetabulum
    dr.capsule(h, add(h, {rng.uniform(10, 30), rng.uniform(40, 60)}), r * 0.6, dr.fill(0.12f, 0.12f, 2.0, 0.3f, 1.5));  // neck
    dr.ellipse(h, r, r, 0, dr.fill(0.14f, 0.14f, 2.0, 0.3f, 1.0));
  }
}

void ribs_draw(Drawer& dr, const SpineGeometry& g, Rng& rng) {
  const VertebraShape& t11 = g.vertebrae[0];
  const VertebraShape& l2 = g.vertebrae[size_t(g.first_lumbar + 1)];
  int n = 2 + int(rng.below(4));
  for (int i = 0; i < n; ++i) {
    // A rib crossing point P, running anteriorly and caudally (about 20–45° from horizontal).
    double t = rng.uniform(0, 1);
    Vec2 P = {t11.corners[1][0] + rng.uniform(-40, 50), t11.corners[1][1] + t * (l2.corners[2][1] - t11.corners[1][1])};
    double slope = rng.uniform(20, 45) * M_PI / 180, R = rng.uniform(150, 260);
    Vec2 c = add(P, {std::sin(slope) * R, -std::cos(slope) * R});  // centre anterior-above
    Vec2 cp = dr.T.apply(c), pp = dr.T.apply(P);
    double a = std::atan2(pp[1] - cp[1], pp[0] - cp[0]), span = rng.uniform(40, 90) / R;
    Fill f = dr.fill(float(rng.uniform(0.03, 0.08)), float(rng.uniform(0.04, 0.1)), 1.2, 0.f, 1.0);
    arc_add(dr.d, cp, R * dr.T.scale, rng.uniform(4, 7) * dr.T.scale, a - span, a + span, f);
  }
}

void posterior_elements_draw(Drawer& dr, const VertebraShape& v, Rng& rng) {
  Vec2 sp = v.corners[1], ip = v.corners[2];
  Vec2 u = unit(sub(mid(v.corners[0], v.corners[3]), mid(sp, ip)));  // posterior -> anterior
  Vec2 wall = sub(ip, sp);
  Vec2 a = add(sp, wall, 0.05), b = add(sp, wall, 0.55);
  double ped = rng.uniform(11, 16);
  dr.poly({a, b, add(b, u, -ped), add(a, u, -ped)}, dr.fill(0.14f, 0.14f, 1.2, 0.3f, 1.0));  // pedicle
  Vec2 facet = add(add(sp, wall, 0.3), u, -ped - 4);
  dr.ellipse(facet, rng.uniform(8, 11), rng.uniform(11, 15), std::atan2(u[1], u[0]), dr.fill(0.1f, 0.12f, 1.2, 0.3f, 1.5));
  Vec2 down = unit(wall);
  Vec2 s0 = add(add(sp, wall, 0.25), u, -ped - 8), s1 = add(add(sp, wall, 0.85), u, -ped - 8);
  double len = rng.uniform(22, 32), drop = rng.uniform(0.2, 0.5);
  Vec2 tip = add(add(mid(s0, s1), u, -len), down, len * drop);
  dr.poly({s0, s1, add(tip, down, 4), add(tip, down, -4)}, dr.fill(0.1f, 0.14f, 1.2, 0.3f, 1.0));  // spinous process
}

void vertebra_draw(Drawer& dr, const VertebraShape& v, Rng& rng) {
  const auto& c = v.corners;
  float dens = float(rng.uniform(0.22, 0.35)) * (v.wedge_fracture ? 1.3f : 1.f);
  float rim = float(rng.uniform(0.15, 0.35)) * (v.wedge_fracture ? 1.5f : 1.f);
  // Edges: 0 sup (sup_ant -> sup_post), 1 posterior wall, 2 inf (inf_post -> inf_ant), 3 anterior wall.
  double wall_bulge = rng.uniform(0.0, 1.5);  // anterior wall slightly concave
  dr.poly({c[0], c[1], c[2], c[3]}, dr.fill(dens, rim, rng.uniform(0.8, 1.6), float(rng.uniform(0.12, 0.25))),
          {v.concavity_mm, 0.3, v.concavity_mm, wall_bulge});
  Vec2 u = unit(sub(c[0], c[1])), n = unit(sub(c[0], c[3]));  // anterior, cranial (roughly)
  if (v.double_contour) {  // second endplate outline, offset into the body (projection of a tilted endplate)
    double o = v.double_offset_mm;
    dr.capsule(add(c[0], n, -o), add(c[1], n, -o * 0.6), 0.5, dr.fill(0.2f));
    dr.capsule(add(c[3], n, o), add(c[2], n, o * 0.6), 0.5, dr.fill(0.2f));
  }
  if (v.osteophytes) {
    double s = v.spur_mm;
    dr.poly({add(c[0], n, -4), add(c[0], u, -3), add(add(c[0], u, 0.6 * s), n, 0.8 * s)}, dr.fill(0.2f, 0.2f, 0.8));
    dr.poly({add(c[3], n, 4), add(c[3], u, -3), add(add(c[3], u, 0.6 * s), n, -0.8 * s)}, dr.fill(0.2f, 0.2f, 0.8));
  }
}

// Pedicle screws through the pedicle into the body, joined by a rod behind.
void implants_draw(Drawer& dr, const SpineGeometry& g, Rng& rng) {
  std::vector<Vec2> heads;
  for (const VertebraShape& v : g.vertebrae) {
    if (!v.screw) continue;
    Vec2 u = unit(sub(mid(v.corners[0], v.corners[3]), mid(v.corners[1], v.corners[2])));
    Vec2 entry = add(add(v.corners[1], sub(v.corners[2], v.corners[1]), 0.35), u, -22);
    Vec2 tip = add(add(entry, u, 50), sub(v.corners[2], v.corners[1]), rng.uniform(-0.1, 0.15));
    dr.capsule(entry, tip, 3.0, dr.fill(2.5f, 0, 0, 0, 0.3));
    dr.ellipse(add(entry, u, -3), 7, 5, std::atan2(u[1], u[0]), dr.fill(2.5f));
    heads.push_back(add(entry, u, -6));
  }
  for (size_t i = 1; i < heads.size(); ++i) dr.capsule(heads[i - 1], heads[i], 3.0, dr.fill(2.5f));
}

}  // namespace

void scene_draw(Image& density, const Image& fine, const SpineGeometry& g, const Similarity& T, Rng& rng) {
  Drawer dr{density, fine, T};
  soft_tissue_draw(dr, g, rng);
  pelvis_draw(dr, g, rng);
  ribs_draw(dr, g, rng);
  // Sacrum: S1 brightest, lower segments fainter; fused disc remnants show as rims.
  for (size_t s = 0; s + 3 < g.sacrum.size(); s += 4) {
    std::vector<Vec2> q(g.sacrum.begin() + long(s), g.sacrum.begin() + long(s) + 4);
    float k = 1.f - 0.12f * float(s / 4);
    dr.poly(q, dr.fill(0.25f * k, 0.2f * k, 1.2, 0.2f), {s == 0 ? rng.uniform(0.3, 1.2) : 0.0, 0, 0, 0});
  }
  Vec2 sp = g.sacrum[1], low = g.sacrum[g.sacrum.size() - 2];  // median sacral crest behind the sacrum
  dr.capsule(add(sp, {-14, 5}), add(low, {-6, 0}), 5, dr.fill(0.08f, 0.1f, 1.0, 0.3f, 1.5));
  for (const VertebraShape& v : g.vertebrae) {
    posterior_elements_draw(dr, v, rng);
    vertebra_draw(dr, v, rng);
  }
  implants_draw(dr, g, rng);
}

}  // namespace sm::synth
