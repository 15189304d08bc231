// Geometry of method.md §5: bilinear sampling, letterbox both ways, the vertebra crop transform
// and its exact inverse, crop parameters from corners (S1 with L5's size) and jitter.
#include <doctest/doctest.h>

#include <cmath>

#include "models/geometry/crop.h"
#include "models/geometry/letterbox.h"
#include "models/image/sampling.h"
#include "tensor/check.h"
#include "tensor/rng.h"

using namespace sm;

namespace {

// A linear ramp f(x, y) = a + b·x + c·y: bilinear interpolation reproduces it exactly.
Image ramp(int w, int h) {
  Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) im.at(x, y) = float(3 + 0.5 * x + 0.25 * y);
  return im;
}
double ramp_at(double x, double y) { return 3 + 0.5 * x + 0.25 * y; }

// Lumbar-lateral points: each vertebra a rectangle w × h centred at c, endplates tilted by
// `deg` (image frame, y down), facing +1 (anterior +x) or −1.
std::vector<Point2> lumbar_rectangles(double deg, int facing) {
  const Schema& s = schema_builtin("lumbar-lateral");
  std::vector<Point2> p(size_t(s.landmark_count()));
  const double t = deg * M_PI / 180, w = 40, h = 30;
  const double ex = std::cos(t) * facing, ey = std::sin(t) * facing;  // posterior -> anterior, unit
  const double nx = -std::sin(t), ny = std::cos(t);                   // caudal, unit
  for (int v = 0; v < 6; ++v) {
    const double cx = 200 + 3 * v, cy = 100 + 50 * v;
    auto at = [&](double a, double b) { return Point2{cx + a * w / 2 * ex + b * h / 2 * nx, cy + a * w / 2 * ey + b * h / 2 * ny}; };
    const std::string n = s.vertebrae[size_t(v)].name;
    p[size_t(s.landmark_index(n + ".sup_ant"))] = at(1, -1);
    p[size_t(s.landmark_index(n + ".sup_post"))] = at(-1, -1);
    if (v < 5) {
      p[size_t(s.landmark_index(n + ".inf_post"))] = at(-1, 1);
      p[size_t(s.landmark_index(n + ".inf_ant"))] = at(1, 1);
    }
  }
  return p;
}

}  // namespace

TEST_CASE("bilinear sampler") {
  const Image im = ramp(5, 4);
  CHECK(image_sample_bilinear(im, 2, 3, -1) == doctest::Approx(ramp_at(2, 3)));
  CHECK(image_sample_bilinear(im, 1.25, 0.5, -1) == doctest::Approx(ramp_at(1.25, 0.5)));
  CHECK(image_sample_bilinear(im, -0.4, 0, -1) == doctest::Approx(ramp_at(0, 0)));  // edge extends half a pixel
  CHECK(image_sample_bilinear(im, -0.6, 0, -1) == -1);
  CHECK(image_sample_bilinear(im, 2, 3.6, -1) == -1);
  CHECK(image_sample_bilinear(im, NAN, 1, -1) == -1);
}

TEST_CASE("letterbox: one scale, centred, exact round trip") {
  const Letterbox lb = letterbox_fit(1000, 3000, 256, 512);
  CHECK(lb.scale == doctest::Approx(512.0 / 3000));
  CHECK(lb.offset_y == doctest::Approx(0));
  CHECK(lb.offset_x == doctest::Approx(0.5 * (256 - 1000 * 512.0 / 3000)));
  // The image's outer edges map to the content's edges.
  const Point2 tl = letterbox_forward(lb, {-0.5, -0.5}), br = letterbox_forward(lb, {999.5, 2999.5});
  CHECK(tl[0] + 0.5 == doctest::Approx(lb.offset_x));
  CHECK(br[0] + 0.5 == doctest::Approx(256 - lb.offset_x));
  CHECK(br[1] + 0.5 == doctest::Approx(512));
  // Never stretch: a 45° segment stays at 45°.
  const Point2 a = letterbox_forward(lb, {100, 100}), b = letterbox_forward(lb, {400, 400});
  CHECK(std::atan2(b[1] - a[1], b[0] - a[0]) == doctest::Approx(M_PI / 4).epsilon(1e-12));
  sm::Rng gen(1);
  auto U = [](sm::Rng& g) { return g.uniform(-100, 3100); };
  for (int i = 0; i < 100; ++i) {
    const Point2 p{U(gen), U(gen)};
    const Point2 q = letterbox_inverse(lb, letterbox_forward(lb, p));
    CHECK(std::fabs(q[0] - p[0]) < 1e-9);
    CHECK(std::fabs(q[1] - p[1]) < 1e-9);
  }
  CHECK_THROWS_AS(letterbox_fit(0, 10, 10, 10), Error);
}

TEST_CASE("letterbox image: area average when shrinking, pad outside") {
  // Shrinking a ramp by 1/4 on a 2:1 canvas: inside, an area average of a linear function is
  // the function at the footprint's centre, i.e. at letterbox_inverse of the output pixel.
  const Image src = ramp(64, 64);
  const Letterbox lb = letterbox_fit(64, 64, 32, 16);
  const Image out = letterbox_image(src, lb, -7.f);
  REQUIRE(out.width == 32);
  REQUIRE(out.height == 16);
  CHECK(out.at(0, 5) == -7.f);   // left pad
  CHECK(out.at(31, 5) == -7.f);  // right pad
  for (int y = 0; y < 16; ++y)
    for (int x = 8; x < 24; ++x) {
      const Point2 p = letterbox_inverse(lb, {double(x), double(y)});
      CHECK(out.at(x, y) == doctest::Approx(ramp_at(p[0], p[1])).epsilon(1e-5));
    }
  // Enlarging: bilinear, interior values follow the ramp too.
  const Image big = letterbox_image(ramp(8, 4), letterbox_fit(8, 4, 32, 32), 0.f);
  const Letterbox lb2 = letterbox_fit(8, 4, 32, 32);
  const Point2 p = letterbox_inverse(lb2, {10, 14});
  CHECK(big.at(10, 14) == doctest::Approx(ramp_at(p[0], p[1])).epsilon(1e-5));
  CHECK(big.at(10, 2) == 0.f);
}

TEST_CASE("crop transform: centre, scale, rotation and exact inverse") {
  CropParams c;
  c.centre = {512.3, 801.7};
  c.angle = 0.3;
  c.side = 150;
  c.size = 64;
  const Point2 mid = crop_to_image(c, {31.5, 31.5});
  CHECK(mid[0] == doctest::Approx(512.3));
  CHECK(mid[1] == doctest::Approx(801.7));
  // One crop side along +x maps to s image pixels along (cos θ, sin θ).
  const Point2 a = crop_to_image(c, {0, 10}), b = crop_to_image(c, {64, 10});
  CHECK(std::hypot(b[0] - a[0], b[1] - a[1]) == doctest::Approx(150));
  CHECK(std::atan2(b[1] - a[1], b[0] - a[0]) == doctest::Approx(0.3));
  sm::Rng gen(7);
  auto U = [](sm::Rng& g) { return g.uniform(); };
  double worst = 0;
  for (int k = 0; k < 200; ++k) {
    CropParams r;
    r.centre = {4000 * U(gen), 4000 * U(gen)};
    r.angle = 2 * M_PI * (U(gen) - 0.5);
    r.side = 20 + 800 * U(gen);
    r.size = 16 + int(200 * U(gen));
    const Point2 p{4000 * U(gen), 4000 * U(gen)};
    const Point2 q = crop_to_image(r, crop_from_image(r, p));
    const Point2 u{r.size * U(gen), r.size * U(gen)};
    const Point2 v = crop_from_image(r, crop_to_image(r, u));
    worst = std::max({worst, std::fabs(q[0] - p[0]), std::fabs(q[1] - p[1]), std::fabs(v[0] - u[0]), std::fabs(v[1] - u[1])});
  }
  CHECK(worst < 1e-4);
  MESSAGE("crop -> inverse worst round-trip error: " << worst << " px");
}

TEST_CASE("crop sampling follows the transform") {
  const Image im = ramp(300, 200);
  CropParams c;
  c.centre = {150, 100};
  c.angle = 0.7;
  c.side = 90;
  c.size = 32;
  for (bool aa : {false, true}) {
    const Image crop = crop_sample(im, c, -1.f, aa);
    for (int y = 0; y < 32; y += 5)
      for (int x = 0; x < 32; x += 3) {
        const Point2 p = crop_to_image(c, {double(x), double(y)});
        CHECK(crop.at(x, y) == doctest::Approx(ramp_at(p[0], p[1])).epsilon(1e-4));
      }
  }
  c.centre = {-200, -200};  // entirely outside
  CHECK(crop_sample(im, c, -1.f).at(5, 5) == -1.f);
}

TEST_CASE("crop parameters from a vertebra's corners") {
  const Schema& s = schema_builtin("lumbar-lateral");
  for (int facing : {1, -1}) {
    CAPTURE(facing);
    const auto pts = lumbar_rectangles(10, facing);
    const CropParams c = crop_params_from_vertebra(s, pts, s.vertebra_index("L3"), 64, 0.25);
    CHECK(c.centre[0] == doctest::Approx(206));
    CHECK(c.centre[1] == doctest::Approx(200));
    CHECK(c.side == doctest::Approx(1.5 * 40));
    // The endplate axis is at 10° (facing left it points the other way, and is turned by 180°
    // so that the crop's +y stays caudal: never upside down).
    const double deg = c.angle * 180 / M_PI;
    const Point2 down = crop_to_image(c, {31.5, 63.5});
    CHECK(down[1] > c.centre[1]);  // crop bottom is caudal
    CHECK(std::fabs(std::remainder(deg - 10, 180)) < 1e-9);
    // Corners map into the crop near the expected margins.
    const Point2 u = crop_from_image(c, pts[size_t(s.landmark_index("L3.sup_ant"))]);
    CHECK(u[1] == doctest::Approx(31.5 - 15 * 64 / 60.0));
  }
  // S1 (2 corners) takes its endplate's direction and L5's size; centre = endplate midpoint.
  const auto pts = lumbar_rectangles(-25, 1);
  const CropParams s1 = crop_params_from_vertebra(s, pts, s.vertebra_index("S1"), 64, 0.25);
  const Point2 a = pts[size_t(s.landmark_index("S1.sup_ant"))], b = pts[size_t(s.landmark_index("S1.sup_post"))];
  CHECK(s1.centre[0] == doctest::Approx(0.5 * (a[0] + b[0])));
  CHECK(s1.side == doctest::Approx(1.5 * 40));
  CHECK(s1.angle * 180 / M_PI == doctest::Approx(-25));
  auto missing = pts;
  missing[0] = {NAN, NAN};
  CHECK_THROWS_WITH_AS(crop_params_from_vertebra(s, missing, 0, 64), doctest::Contains("'L1' lacks corners"), Error);
}

TEST_CASE("crop jitter") {
  CropParams c;
  c.centre = {100, 200};
  c.angle = 0.1;
  c.side = 80;
  CropJitter j;
  j.centre_px = 2;
  j.centre_frac = 0.1;
  j.angle_deg = 5;
  j.scale_log = 0.2;
  std::vector<double> seq{1.0, -0.5, 2.0, 0.5};
  size_t k = 0;
  const CropParams d = crop_jitter(c, j, [&] { return seq[k++]; });
  CHECK(d.centre[0] == doctest::Approx(100 + 10 * 1.0));
  CHECK(d.centre[1] == doctest::Approx(200 - 10 * 0.5));
  CHECK(d.angle == doctest::Approx(0.1 + 10 * M_PI / 180));
  CHECK(d.side == doctest::Approx(80 * std::exp(0.1)));
  j.uniform = true;
  k = 0;
  seq = {0.5, 0.5, 0.5, 0.5};  // the middle of U[0, 1) is no change
  const CropParams e = crop_jitter(c, j, [&] { return seq[k++]; });
  CHECK(e.centre[0] == doctest::Approx(100));
  CHECK(e.side == doctest::Approx(80));
  CHECK_THROWS_AS(crop_jitter(c, j, nullptr), Error);
}
