// Synthetic lateral lumbar radiographs (method.md §7.2): bit-identical per seed, landmarks inside
// the image and consistent with the schema, angle distributions plausible, files round-trip.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"
#include "models/image/image_io.h"
#include "train/synth/synth.h"

using namespace sm;

namespace {

// θ(e) of method.md §3 after mirroring a left-facing patient; e = anterior - posterior.
double theta(const Annotation& a, const Schema& s, const std::string& v, const std::string& ant, const std::string& post,
             bool mirror) {
  Point2 A = a.points[size_t(s.landmark_index(v + "." + ant))], P = a.points[size_t(s.landmark_index(v + "." + post))];
  double ex = A[0] - P[0], ey = A[1] - P[1];
  if (mirror) ex = -ex;
  return std::atan2(-ey, ex) * 180.0 / M_PI;
}

bool faces_left(const Annotation& a, const Schema& s) {
  double d = 0;
  for (const auto& v : {"L1", "L2", "L3", "L4", "L5"})
    d += a.points[size_t(s.landmark_index(std::string(v) + ".sup_ant"))][0] -
         a.points[size_t(s.landmark_index(std::string(v) + ".sup_post"))][0];
  return d < 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

TEST_CASE("synth is bit-identical for a seed and differs for another") {
  const Schema& s = schema_builtin("lumbar-lateral");
  SynthOptions o;
  o.size = 256;
  SynthSample a = synth_generate(s, 7, 3, o), b = synth_generate(s, 7, 3, o), c = synth_generate(s, 8, 3, o),
              d = synth_generate(s, 7, 4, o);
  CHECK(a.image.data == b.image.data);
  CHECK(a.annotation.points == b.annotation.points);
  CHECK(a.annotation.extra.dump() == b.annotation.extra.dump());
  CHECK(a.image.data != c.image.data);
  CHECK(a.annotation.points != c.annotation.points);
  CHECK(a.image.data != d.image.data);
}

TEST_CASE("synth landmarks: inside, consistent with the schema, plausible angles") {
  const Schema& s = schema_builtin("lumbar-lateral");
  SynthOptions o;
  o.size = 192;  // geometry does not depend on the size; keep the test fast
  std::vector<double> lordosis, slope;
  int left = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    SynthSample x = synth_generate(s, 11, i, o);
    const Annotation& a = x.annotation;
    REQUIRE(a.points.size() == 22);
    REQUIRE(a.pixel_spacing_mm);
    double mm = (*a.pixel_spacing_mm)[0];
    for (const Point2& p : a.points) {
      CHECK(p[0] > 0);
      CHECK(p[1] > 0);
      CHECK(p[0] < o.size - 1);
      CHECK(p[1] < o.size - 1);
    }
    bool mirror = faces_left(a, s);
    left += mirror;
    for (const auto& v : {"L1", "L2", "L3", "L4", "L5"}) {
      auto P = [&](const char* c) { return a.points[size_t(s.landmark_index(std::string(v) + "." + c))]; };
      auto len = [&](Point2 p, Point2 q) { return std::hypot(p[0] - q[0], p[1] - q[1]) * mm; };
      double sup = len(P("sup_ant"), P("sup_post")), inf = len(P("inf_ant"), P("inf_post"));
      double post_wall = len(P("sup_post"), P("inf_post")), ant_wall = len(P("sup_ant"), P("inf_ant"));
      CHECK(sup > 25);  // endplates 30–50 mm, walls 12–35 mm (wedge fractures lower the anterior one)
      CHECK(sup < 60);
      CHECK(inf > 25);
      CHECK(post_wall > 18);
      CHECK(ant_wall > 10);
      CHECK(post_wall < 40);
      // anterior corners on the facing side
      CHECK(((P("sup_ant")[0] < P("sup_post")[0]) == mirror));
      CHECK(((P("inf_ant")[0] < P("inf_post")[0]) == mirror));
    }
    lordosis.push_back(theta(a, s, "L1", "sup_ant", "sup_post", mirror) - theta(a, s, "S1", "sup_ant", "sup_post", mirror));
    slope.push_back(-theta(a, s, "S1", "sup_ant", "sup_post", mirror));
    double rot = a.extra["synthetic"]["rotation_deg"].get<double>();
    CHECK(std::abs(slope.back() - a.extra["synthetic"]["sampled_sacral_slope_deg"].get<double>()) <= std::abs(rot) + 1e-6);
    CHECK(a.extra.contains("femoral_head_centres"));
  }
  double lo = *std::min_element(lordosis.begin(), lordosis.end()), hi = *std::max_element(lordosis.begin(), lordosis.end());
  MESSAGE("L1-S1 lordosis " << lo << ".." << hi << " median " << median(lordosis) << "; sacral slope "
                            << *std::min_element(slope.begin(), slope.end()) << ".."
                            << *std::max_element(slope.begin(), slope.end()) << " median " << median(slope)
                            << "; facing left " << left << "/50");
  CHECK(lo > 0);
  CHECK(hi < 100);
  CHECK(median(lordosis) > 38);
  CHECK(median(lordosis) < 62);
  // sampled SS lies in [15, 65]; the film is rotated by up to ±17.2°, which the image-frame SS includes
  CHECK(*std::min_element(slope.begin(), slope.end()) >= 15 - 17.2);
  CHECK(*std::max_element(slope.begin(), slope.end()) <= 65 + 17.2);
  CHECK(median(slope) > 34);
  CHECK(median(slope) < 50);
  CHECK(left > 10);
  CHECK(left < 40);
}

TEST_CASE("synth files: 16-bit PNG equals the image, annotation reads back") {
  const Schema& s = schema_builtin("lumbar-lateral");
  SynthOptions o;
  o.size = 128;
  SynthSample x = synth_generate(s, 5, 0, o);
  auto dir = std::filesystem::temp_directory_path() / ("spinemark_test_synth_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  synth_write(dir.string(), "s0", x, s, 16);
  Image back = image_read((dir / "s0.png").string());
  CHECK(back.bits == 16);
  CHECK(back.data == x.image.data);
  Annotation a = annotation_read((dir / "s0.json").string());
  CHECK(a.image == "s0.png");
  CHECK(a.schema == "lumbar-lateral");
  REQUIRE(a.points.size() == 22);
  for (size_t i = 0; i < 22; ++i) CHECK(a.points[i][0] == doctest::Approx(x.annotation.points[i][0]).epsilon(1e-9));
  CHECK(a.extra.contains("femoral_head_centres"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("synth speed at 512x512 (reported, not a pass/fail benchmark)") {
  const Schema& s = schema_builtin("lumbar-lateral");
  auto t0 = std::chrono::steady_clock::now();
  const int n = 10;
  for (int i = 0; i < n; ++i) synth_generate(s, 1, uint64_t(i));
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("synth_generate 512x512: " << n / sec << " images/s on one core");
  CHECK(sec > 0);
}
