// Evaluation and report (train/eval/): eval_compute on hand-made predictions with known errors
// (shifts, gross misses, flags) against hand-computed numbers, then eval_write's files, and the
// report opened in headless Chromium: every embedded image decodes and no script error shows.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "models/geometry/crop.h"
#include "models/measure/angles.h"
#include "models/measure/metrics.h"
#include "tensor/file_io.h"
#include "test_support.h"
#include "models/image/image_io.h"
#include "train/eval/eval.h"
#include "train/eval/report_html.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

const Schema& lumbar() { return schema_builtin("lumbar-lateral"); }

std::vector<Point2> shifted(const std::vector<Point2>& pts, double dx, double dy) {
  std::vector<Point2> out = pts;
  for (auto& p : out) p = {p[0] + dx, p[1] + dy};
  return out;
}

// A complete PipelineResult around the given step-1 and final landmarks (what Pipeline::run fills).
PipelineResult pipeline_result_fake(const Schema& s, const Annotation& gt, int w, int h, std::vector<Point2> step1,
                                    std::vector<Point2> final) {
  PipelineResult r;
  r.image_width = w, r.image_height = h;
  const size_t L = size_t(s.landmark_count());
  for (int v = 0; v < s.vertebra_count(); ++v) {
    Point2 c{0, 0};
    const auto idx = s.vertebra_landmarks(v);
    for (int i : idx) c = {c[0] + gt.points[size_t(i)][0] / double(idx.size()), c[1] + gt.points[size_t(i)][1] / double(idx.size())};
    r.centres.push_back(c);
    r.centre_spread_px.push_back(3.0);
    r.crops.push_back(crop_params_from_vertebra(s, step1, v, 64));
    r.mirrored.push_back(angles_mirror(s, step1));
  }
  r.step1_spread_px.assign(L, 2.5);
  r.spread_px.assign(L, 1.0);
  r.step1_angles = angles_compute(s, step1, h);
  r.angles = angles_compute(s, final, h);
  r.step1 = std::move(step1);
  r.landmarks = std::move(final);
  r.landmark_flagged.assign(L, false);
  r.timings_ms = {{"detect", 4.0}, {"coarse", 5.0}, {"refine", 9.0}};
  return r;
}

double width_of(const Schema& s, const Annotation& gt, const std::string& landmark) {
  const std::string v = landmark.substr(0, landmark.find('.'));
  return vertebra_dimensions(s, gt.points, s.vertebra_index(v))[0];
}

// Four synthetic films (the last one 800 px, to see the overlay shrink to 768) with known errors:
// step 1 = truth + (2, 0) everywhere; step 1 + 2 = truth + (0, 1), except
//   image 1: L2.inf_ant moved a bit less than width/3 (not a miss),
//   image 2: L1.inf_post moved by width/3 + 3 in y (a miss, not flagged),
//   image 3: L3.sup_ant moved by width/3 + 5 in x (a miss, flagged) and L4.sup_post flagged (no miss).
struct Fixture {
  EvalResult result;
  std::vector<double> moved_error;  // per image: the Euclidean error of its moved landmark (or 1)
};

Fixture fixture_make(const test::TempDir& dir) {
  const Schema& s = lumbar();
  Fixture f;
  f.result.schema = s;
  f.result.seconds_per_image = 0.018;
  const std::vector<std::string> moved = {"", "L2.inf_ant", "L1.inf_post", "L3.sup_ant"};
  for (int i = 0; i < 4; ++i) {
    SynthOptions o;
    o.size = i == 3 ? 800 : 256;
    SynthSample smp = synth_generate(s, 11, uint64_t(i), o);
    EvalImage im;
    im.name = "film_" + std::to_string(i) + ".png";
    im.image_path = dir.file(im.name);
    image_write_png(im.image_path, smp.image);
    im.gt = smp.annotation;
    im.gt_angles = angles_compute(s, im.gt.points, o.size);
    std::vector<Point2> fin = shifted(im.gt.points, 0, 1);
    double err = 1;
    if (!moved[size_t(i)].empty()) {
      const size_t k = size_t(s.landmark_index(moved[size_t(i)]));
      const double w3 = width_of(s, im.gt, moved[size_t(i)]) / 3.0;
      const Point2 d = i == 1 ? Point2{w3 - 0.5, 0.0} : i == 2 ? Point2{0.0, w3 + 3.0} : Point2{w3 + 5.0, 0.0};
      fin[k] = {im.gt.points[k][0] + d[0], im.gt.points[k][1] + d[1]};
      err = std::hypot(d[0], d[1]);
    }
    f.moved_error.push_back(err);
    im.pred = pipeline_result_fake(s, im.gt, o.size, o.size, shifted(im.gt.points, 2, 0), fin);
    if (i == 3) {
      im.pred.landmark_flagged[size_t(s.landmark_index("L3.sup_ant"))] = true;
      im.pred.landmark_flagged[size_t(s.landmark_index("L4.sup_post"))] = true;
      im.pred.flags = {"refine_far_from_step1:L3.sup_ant", "refine_far_from_step1:L4.sup_post"};
    }
    f.result.images.push_back(std::move(im));
  }
  return f;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// `chromium` or `chromium-browser` on the PATH, or "".
std::string chromium_find() {
  for (const char* name : {"chromium", "chromium-browser"})
    if (std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0) return name;
  return "";
}

}  // namespace

TEST_CASE("base64 and HTML escaping") {
  CHECK(base64_encode("") == "");  // RFC 4648 §10 test vectors
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::string("\xff\x00\xfe", 3)) == "/wD+");
  CHECK(html_escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
}

TEST_CASE("eval_compute: known shifts, gross misses and flags") {
  test::TempDir dir("report_compute");
  Fixture f = fixture_make(dir);
  EvalResult& r = f.result;
  eval_compute(r);
  const Schema& s = lumbar();
  const int L = s.landmark_count(), n = 4 * L;
  // Step 1: a constant 2 px shift in x -> every landmark 2 px off, no y error.
  CHECK(r.step1.images == 4);
  CHECK(r.step1.overall.px.count == n);
  CHECK(r.step1.overall.px.median == doctest::Approx(2.0));
  CHECK(r.step1.overall.px.mean == doctest::Approx(2.0));
  CHECK(r.step1.overall.px.p90 == doctest::Approx(2.0));
  CHECK(r.step1.overall.rel_y.p90 == doctest::Approx(0.0));
  // rel x of L1.sup_ant on image 0 = 2 / width(L1) · 100
  const double w_l1 = width_of(s, r.images[0].gt, "L1.sup_ant");
  const auto e0 = landmark_errors(s, r.images[0].gt.points, {}, r.images[0].pred.step1, std::nullopt);
  CHECK(e0[0].rel_x == doctest::Approx(200.0 / w_l1));
  // Step 1 + 2: 1 px everywhere but the three moved landmarks.
  CHECK(r.final.overall.px.count == n);
  CHECK(r.final.overall.px.median == doctest::Approx(1.0));
  const double sum = double(n - 3) + f.moved_error[1] + f.moved_error[2] + f.moved_error[3];
  CHECK(r.final.overall.px.mean == doctest::Approx(sum / n));
  // A shift changes no angle; the moved corners change some.
  for (const AngleStats& a : r.step1.per_angle) CHECK(a.mean_abs == doctest::Approx(0.0).epsilon(1e-9));
  for (size_t k = 0; k < s.angles.size(); ++k) {
    double mean_abs = 0;
    for (const EvalImage& im : r.images) mean_abs += std::fabs(im.pred.angles[k] - im.gt_angles[k]) / 4.0;
    CHECK(r.final.per_angle[k].mean_abs == doctest::Approx(mean_abs));
    CHECK(r.final.per_angle[k].count == 4);
  }
  // Gross misses: images 2 and 3 each have one; only image 3's is flagged, plus one false alarm.
  CHECK(r.gross.landmarks == n);
  CHECK(r.gross.misses == 2);
  CHECK(r.gross.misses_flagged == 1);
  CHECK(r.gross.good_flagged == 1);
  CHECK(r.gross.images_with_miss == 2);
  CHECK(eval_gross_misses(s, r.images[1])[size_t(s.landmark_index("L2.inf_ant"))] == 0);
  CHECK(eval_gross_misses(s, r.images[2])[size_t(s.landmark_index("L1.inf_post"))] == 1);
  const EvalImageErrors ie = eval_image_errors(s, r.images[0]);
  CHECK(ie.mean_px_step1 == doctest::Approx(2.0));
  CHECK(ie.mean_px_final == doctest::Approx(1.0));
  CHECK(ie.gross_misses == 0);
  CHECK(eval_image_errors(s, r.images[3]).gross_misses == 1);
  // JSON: both reports, the gross-miss block and one row per image.
  const nlohmann::json j = r.to_json();
  CHECK(j["images"] == 4);
  CHECK(j["step1"]["overall"]["px"]["median"].get<double>() == doctest::Approx(2.0));
  CHECK(j["final"]["overall"]["px"]["median"].get<double>() == doctest::Approx(1.0));
  CHECK(j["gross_misses"]["misses"] == 2);
  CHECK(j["gross_misses"]["flag_catch_rate"].get<double>() == doctest::Approx(0.5));
  REQUIRE(j["per_image"].size() == 4);
  CHECK(j["per_image"][0]["name"] == "film_0.png");
  CHECK(j["per_image"][0]["mean_px_error"].get<double>() == doctest::Approx(1.0));
  CHECK(j["per_image"][3]["angle_error_deg"].size() == s.angles.size());
  CHECK(j["seconds_per_image"].get<double>() == doctest::Approx(0.018));
}

TEST_CASE("eval_compute: the film-level verdict against gross misses and angle errors") {
  test::TempDir dir("report_verdict");
  Fixture f = fixture_make(dir);
  EvalResult& r = f.result;
  // Images 2 and 3 have a gross miss (case above). Image 3 caught, image 2 missed, image 1 a
  // false alarm, image 0 right.
  r.images[0].pred.status = "ok", r.images[1].pred.status = "review";
  r.images[2].pred.status = "ok", r.images[3].pred.status = "rejected";
  // Image 0's first angle 15° off (a miss of the angle criterion), image 1's 9° off (fine).
  r.images[0].pred.angles[0] = r.images[0].gt_angles[0] + 15.0;
  r.images[1].pred.angles[0] = r.images[1].gt_angles[0] - 9.0;
  eval_compute(r);
  const VerdictStats& v = r.verdict;
  CHECK(v.ok == 2);
  CHECK(v.review == 1);
  CHECK(v.rejected == 1);
  CHECK(v.with_miss == 2);
  CHECK(v.with_miss_caught == 1);
  CHECK(v.without_miss == 2);
  CHECK(v.without_miss_marked == 1);
  // Angle criterion: image 0 off (not caught); images 2 and 3 as their moved corners make them.
  int off = 0, off_caught = 0, fine_marked = 0;
  for (const EvalImage& im : r.images) {
    bool o = false;
    for (size_t k = 0; k < im.gt_angles.size(); ++k) o = o || std::fabs(im.pred.angles[k] - im.gt_angles[k]) > 10.0;
    const bool marked = im.pred.status != "ok";
    off += o, off_caught += o && marked, fine_marked += !o && marked;
  }
  CHECK(off >= 1);
  CHECK(v.angle_off == off);
  CHECK(v.angle_off_caught == off_caught);
  CHECK(v.angle_fine == 4 - off);
  CHECK(v.angle_fine_marked == fine_marked);
  const nlohmann::json j = r.to_json();
  CHECK(j["verdict"]["gross_miss_catch_rate"].get<double>() == doctest::Approx(0.5));
  CHECK(j["verdict"]["gross_miss_false_alarm_rate"].get<double>() == doctest::Approx(0.5));
  CHECK(j["per_image"][3]["status"] == "rejected");
  CHECK(eval_headline(r).find("verdict: 2 ok, 1 review, 1 rejected; films with a gross miss marked: 1 of 2") != std::string::npos);
}

TEST_CASE("eval_write: metrics, predictions and a self-contained report that Chromium renders") {
  test::TempDir dir("report_write");
  Fixture f = fixture_make(dir);
  eval_compute(f.result);
  const std::string out = dir.file("out");
  eval_write(out, f.result, "Test <report> & \"title\"");
  const nlohmann::json m = nlohmann::json::parse(file_read_all(out + "/metrics.json"));
  CHECK(m["gross_misses"]["misses"] == 2);
  CHECK(m["title"] == "Test <report> & \"title\"");
  for (int i = 0; i < 4; ++i) {
    const auto p = nlohmann::json::parse(file_read_all(out + "/predictions/film_" + std::to_string(i) + ".json"));
    CHECK(p.contains("landmarks"));
    CHECK(p.contains("step1_landmarks"));
  }
  const std::string html = file_read_all(out + "/report.html");
  CHECK(html.find("Test &lt;report&gt; &amp; &quot;title&quot;") != std::string::npos);
  CHECK(html.find("<report>") == std::string::npos);
  // no external URL of any kind (":" is not a base64 character, so image data cannot match)
  CHECK(html.find("http:") == std::string::npos);
  CHECK(html.find("https:") == std::string::npos);
  CHECK(html.find("src=\"data:image/png;base64,") != std::string::npos);
  const int imgs = count_of(html, "<img ");
  CHECK(imgs == 3);                                      // best, median, worst: distinct films
  CHECK(count_of(html, "<svg") == 2 * int(lumbar().angles.size()) + 1);
  // every overlay at most 768 px on its longer side (the 800 px film is the worst)
  for (size_t p = html.find("<img "); p != std::string::npos; p = html.find("<img ", p + 1)) {
    const std::string tag = html.substr(p, html.find('>', p) - p);
    const size_t w = tag.find(" width=\""), h = tag.find(" height=\"");
    REQUIRE((w != std::string::npos && h != std::string::npos));
    CHECK(std::max(std::stoi(tag.substr(w + 8)), std::stoi(tag.substr(h + 9))) <= 768);
  }
  CHECK(html.find("width=\"768\"") != std::string::npos);

  const std::string chromium = chromium_find();
  if (chromium.empty()) {
    MESSAGE("chromium not found: skipping the browser check (scripts/setup.sh installs it)");
    return;
  }
  const std::string dom = dir.file("dom.html"), err = dir.file("chromium.err");
  const std::string cmd = "timeout 120 " + chromium + " --headless --disable-gpu --no-sandbox --enable-logging=stderr --v=0 " +
                          "--user-data-dir=" + dir.file("profile") + " --virtual-time-budget=5000 --dump-dom 'file://" +
                          out + "/report.html' > '" + dom + "' 2> '" + err + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string dumped = file_read_all(dom), log = file_read_all(err);
  const std::string ok = std::to_string(imgs) + "/" + std::to_string(imgs);
  CHECK_MESSAGE(dumped.find("data-images-ok=\"" + ok + "\"") != std::string::npos, "dumped DOM lacks data-images-ok=" << ok);
  CHECK(count_of(dumped, "<img ") == imgs);
  CHECK_MESSAGE(log.find("Uncaught") == std::string::npos, log);
  CHECK_MESSAGE(log.find("CONSOLE") == std::string::npos, log);
}
