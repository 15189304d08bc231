// What `spinemark predict` and training write besides weights: our bitmap font, the prediction
// file (method.md §2.1), the overlay picture, the curve plots, and the input listing, shards,
// stems and summary rows of the predict command.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "models/geometry/annotation.h"
#include "models/pipeline/prediction_json.h"
#include "tensor/check.h"
#include "test_support.h"
#include "models/image/image_io.h"
#include "models/image/text_draw.h"
#include "models/pipeline/predict_inputs.h"
#include "models/pipeline/prediction_overlay.h"
#include "train/run/curves_plot.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

int pixels_lit(const RgbImage& c) {
  int n = 0;
  for (size_t i = 0; i < c.rgb.size(); i += 3) n += (c.rgb[i] | c.rgb[i + 1] | c.rgb[i + 2]) != 0;
  return n;
}

int pixels_red(const RgbImage& c) {
  int n = 0;
  for (size_t i = 0; i < c.rgb.size(); i += 3) n += c.rgb[i] > 200 && c.rgb[i + 1] < 60 && c.rgb[i + 2] < 60;
  return n;
}

// A plausible lumbar-lateral result: every vertebra a 40×30 box down the film, step 1 a few
// pixels off, spreads 1.5 px, three angles, no flags.
PipelineResult result_make(const Schema& s, int width, int height) {
  PipelineResult r;
  r.image_width = width, r.image_height = height;
  for (int v = 0; v < s.vertebra_count(); ++v) {
    const double x0 = 0.4 * width, y0 = 20 + 45 * v;
    const Point2 corners[4] = {{x0 + 40, y0}, {x0, y0}, {x0, y0 + 30}, {x0 + 40, y0 + 30}};
    const auto idx = s.vertebra_landmarks(v);
    for (size_t c = 0; c < idx.size(); ++c) r.landmarks.push_back(corners[c]);
  }
  for (const auto& p : r.landmarks) r.step1.push_back({p[0] + 3, p[1] - 2});
  r.spread_px.assign(r.landmarks.size(), 1.5);
  r.step1_spread_px.assign(r.landmarks.size(), 4.0);
  r.landmark_flagged.assign(r.landmarks.size(), false);
  r.angles.assign(s.angles.size(), 12.5);
  r.step1_angles.assign(s.angles.size(), 10.0);
  r.timings_ms = {{"detect", 5.0}, {"coarse", 6.0}, {"total", 20.0}};
  return r;
}

Image film_make(int w, int h) {
  Image f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) f.at(x, y) = float((x * 3 + y * 5) % 200);
  return f;
}

void file_put(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

}  // namespace

TEST_CASE("font: every printable character draws pixels, each glyph differs, and nothing escapes the canvas") {
  std::set<std::vector<uint8_t>> glyphs;
  for (int code = 33; code <= 126; ++code) {
    RgbImage c(8, 9);
    overlay_text_draw(c, 1, 1, std::string(1, char(code)), {255, 255, 255}, 1, false);
    INFO("character " << char(code));
    CHECK(pixels_lit(c) > 0);
    glyphs.insert(c.rgb);
  }
  CHECK(glyphs.size() == 94);  // no two glyphs alike
  RgbImage space(8, 9);
  overlay_text_draw(space, 1, 1, " ", {255, 255, 255}, 1, false);
  CHECK(pixels_lit(space) == 0);

  CHECK(overlay_text_width("abc", 1) == 17);
  CHECK(overlay_text_width("abc", 2) == 34);
  CHECK(overlay_text_width("ab\nlonger", 1) == 35);
  CHECK(overlay_text_height("one", 1) == 7);
  CHECK(overlay_text_height("one\ntwo", 3) == 48);
  CHECK(overlay_text_width("", 1) == 0);

  RgbImage c(20, 10, {100, 100, 100});
  for (int x : {-1000000000, -30, -3, 15, 19, 25, 1000000000})
    for (int y : {-1000000000, -8, 5, 9, 1000000000})
      overlay_text_draw(c, x, y, "Hi\n\x01\xff~", {255, 0, 0}, 3, true);
  overlay_text_draw(c, 0, 0, std::string(5000, 'W'), {255, 0, 0}, 64, true);
  CHECK(c.width == 20);
  CHECK_THROWS_AS(overlay_text_draw(c, 0, 0, "x", {0, 0, 0}, 0), Error);
  // A dark background box darkens a light canvas around the text.
  RgbImage light(40, 20, {200, 200, 200});
  overlay_text_draw(light, 5, 5, "A", {255, 255, 255}, 1, true);
  CHECK(int(light.rgb[(5 * 40 + 4) * 3]) < 200);
}

TEST_CASE("prediction_to_json: points round-trip, NaN is null, keys of method.md §2.1") {
  const Schema& s = schema_builtin("lumbar-lateral");
  PipelineResult r = result_make(s, 400, 400);
  r.landmarks[1] = {NAN, NAN};
  r.step1[2] = {5.0, NAN};
  r.spread_px[3] = NAN;
  r.angles[1] = NAN;
  r.flags = {"refine_far_from_step1:L1.sup_post"};
  const auto j = prediction_to_json(s, r, "films/x.png", std::array<double, 2>{0.2, 0.3});
  for (const char* key : {"image", "schema", "pixel_spacing_mm", "landmarks", "visible", "step1_landmarks", "confidence",
                          "confidence_mm", "angles", "step1_angles", "flags", "timings_ms"})
    CHECK_MESSAGE(j.contains(key), key);
  CHECK(j["image"] == "films/x.png");
  CHECK(j["schema"] == "lumbar-lateral");
  CHECK(j["landmarks"][s.landmarks[0]][0].get<double>() == r.landmarks[0][0]);
  CHECK(j["landmarks"][s.landmarks[0]][1].get<double>() == r.landmarks[0][1]);
  CHECK(j["landmarks"][s.landmarks[1]].is_null());
  CHECK(j["visible"][s.landmarks[1]] == false);
  CHECK(j["visible"][s.landmarks[0]] == true);
  CHECK(j["step1_landmarks"][s.landmarks[2]].is_null());
  CHECK(j["confidence"][s.landmarks[3]].is_null());
  CHECK(j["confidence"][s.landmarks[0]].get<double>() == 1.5);
  CHECK(j["confidence_mm"][s.landmarks[0]].get<double>() == doctest::Approx(1.5 * 0.25));
  CHECK(j["angles"][s.angles[1]].is_null());
  CHECK(j["angles"][s.angles[0]].get<double>() == 12.5);
  CHECK(j["flags"].size() == 1);
  CHECK(j["timings_ms"]["total"].get<double>() == 20.0);

  // The file reads back as an annotation with the same points (through the text, as on disk).
  const Annotation a = annotation_from_json(nlohmann::json::parse(j.dump()), s);
  for (int i = 0; i < s.landmark_count(); ++i) {
    INFO("landmark " << s.landmarks[size_t(i)]);
    if (i == 1) {
      CHECK(std::isnan(a.points[1][0]));
      CHECK(!a.visible[1]);
    } else {
      CHECK(a.points[size_t(i)] == r.landmarks[size_t(i)]);
    }
  }
  const auto no_spacing = prediction_to_json(s, r, "x.png", std::nullopt);
  CHECK(no_spacing["pixel_spacing_mm"].is_null());
  CHECK(!no_spacing.contains("confidence_mm"));
  r.angles.pop_back();
  CHECK_THROWS_AS(prediction_to_json(s, r, "x.png", std::nullopt), Error);
}

TEST_CASE("prediction_overlay: canvas size, red rings only where flagged, NaN points skipped") {
  const Schema& s = schema_builtin("lumbar-lateral");
  const Image film = film_make(600, 400);
  PipelineResult r = result_make(s, 600, 400);
  r.landmarks[5] = {NAN, NAN};
  const RgbImage clean = prediction_overlay(film, s, r, nullptr, 300);
  CHECK(clean.width == 300 + prediction_overlay_margin_width(300, 200));  // the verdict's margin beside the film
  CHECK(clean.height == 200);
  CHECK(pixels_red(clean) == 0);

  r.landmark_flagged[2] = true;
  r.flags = {"refine_far_from_step1:" + s.landmarks[2]};
  Annotation gt;
  gt.points = r.landmarks;
  gt.points[0] = {NAN, NAN};
  const RgbImage flagged = prediction_overlay(film, s, r, &gt, 300);
  CHECK(flagged.width == 300 + prediction_overlay_margin_width(300, 200));
  CHECK(pixels_red(flagged) > 20);

  // A small film is not enlarged.
  const RgbImage small = prediction_overlay(film_make(120, 500), s, r, nullptr, 1024);
  CHECK(small.width == 120 + prediction_overlay_margin_width(120, 500));
  CHECK(small.height == 500);
}

TEST_CASE("curves_plot_png: a readable PNG of the panels side by side; bad values are skipped") {
  test::TempDir dir("predict_outputs_curves");
  CurvePanel loss{"loss", "step", "loss", true, {}};
  CurveSeries train{"train", {}, {}, {31, 119, 180}};
  for (int i = 0; i < 500; ++i) {
    train.x.push_back(i);
    train.y.push_back(i == 100 ? NAN : i == 200 ? 0.0 : 2.0 * std::exp(-i / 100.0) + 0.01);
  }
  loss.series.push_back(train);
  CurvePanel val{"validation error (px)", "epoch", "px", false, {}};
  val.series.push_back({"detect", {1, 2, 3}, {30, 22, INFINITY}, {214, 39, 40}});
  val.series.push_back({"refine", {1, 2, 3}, {9, 7, 6.5}, {44, 160, 44}});
  CurvePanel empty{"nothing yet", "x", "y", false, {}};
  const std::string path = dir.file("curves.png");
  curves_plot_png(path, {loss, val, empty});
  const Image back = image_read(path);
  CHECK(back.width == 3 * 480);
  CHECK(back.height == 320);
  float lo = 255;
  for (float v : back.data) lo = std::min(lo, v);
  CHECK(lo < 100);  // ink on the paper

  const RgbImage flat = curves_plot({CurvePanel{"flat", "x", "y", false, {{"c", {0, 1}, {5, 5}, {0, 0, 0}}}}}, 200, 160);
  CHECK(flat.width == 200);
  CurvePanel bad{"bad", "x", "y", false, {{"s", {1, 2}, {1}, {0, 0, 0}}}};
  CHECK_THROWS_AS(curves_plot_png(dir.file("bad.png"), {bad}), Error);
  CHECK_THROWS_AS(curves_plot_png(dir.file("none.png"), {}), Error);
  CHECK(!fs::exists(dir.file("bad.png")));
}

TEST_CASE("predict inputs: shards cover every input exactly once; stems unique; folder and manifest listing") {
  std::vector<std::string> inputs;
  for (int i = 0; i < 10; ++i) inputs.push_back("films/f" + std::to_string(9 - i) + ".png");
  std::multiset<std::string> all;
  size_t sizes[3];
  for (int k = 1; k <= 3; ++k) {
    const auto part = predict_inputs_shard(inputs, predict_shard_parse(std::to_string(k) + "/3"));
    sizes[k - 1] = part.size();
    all.insert(part.begin(), part.end());
  }
  CHECK(all == std::multiset<std::string>(inputs.begin(), inputs.end()));
  CHECK(sizes[0] == 4);
  CHECK(sizes[1] == 3);
  CHECK(sizes[2] == 3);
  CHECK(predict_inputs_shard(inputs, {1, 3})[1] == "films/f3.png");  // sorted by path, every third
  for (const char* bad : {"0/3", "4/3", "1/0", "a/b", "1/3x", "13", "", "-1/3"})
    CHECK_THROWS_AS(predict_shard_parse(bad), Error);

  // --shard auto: the index (and count) from the scheduler's environment, never from the host.
  std::map<std::string, std::string> vars;
  const auto env = [&vars](const char* k) -> const char* {
    const auto it = vars.find(k);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  auto shard = [&env](const char* text) { return predict_shard_parse(text, env); };
  CHECK_THROWS_WITH_AS(shard("auto"), doctest::Contains("needs a Slurm job array"), Error);
  CHECK_THROWS_WITH_AS(shard("auto/4"), doctest::Contains("no scheduler index"), Error);
  vars = {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_COUNT", "8"}};  // --array=0-7
  CHECK(shard("auto").index == 1);
  CHECK(shard("auto").count == 8);
  vars = {{"SLURM_ARRAY_TASK_ID", "8"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_COUNT", "8"}};  // --array=1-8
  CHECK(shard("auto").index == 8);
  CHECK(shard("auto/8").index == 8);
  CHECK_THROWS_WITH_AS(shard("auto/4"), doctest::Contains("makes this task 8 of 4"), Error);
  vars = {{"JOB_COMPLETION_INDEX", "2"}};  // Kubernetes Indexed Job, completions: 5
  CHECK(shard("auto/5").index == 3);
  CHECK(shard("auto/5").count == 5);
  CHECK_THROWS_WITH_AS(shard("auto"), doctest::Contains("needs a Slurm job array"), Error);
  vars = {{"JOB_COMPLETION_INDEX", "-1"}};
  CHECK_THROWS_WITH_AS(shard("auto/5"), doctest::Contains("JOB_COMPLETION_INDEX is '-1'"), Error);
  vars = {{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "99999999999999999999"}};
  CHECK_THROWS_WITH_AS(shard("auto"), doctest::Contains("SLURM_ARRAY_TASK_COUNT is '99999999999999999999'"), Error);

  CHECK(predict_output_names({"a/x.png", "a/y.png", "b/x1.png"}) == std::vector<std::string>{"a/x", "a/y", "b/x1"});
  CHECK(predict_output_names({"/films/p1/IM1.dcm", "/films/p2/IM1.dcm"}) == std::vector<std::string>{"p1/IM1", "p2/IM1"});
  CHECK(predict_output_names({"/films/p1/IM1.dcm"}) == std::vector<std::string>{"IM1"});
  CHECK(predict_output_names({"/films/p1/IM1.dcm", "/films/x.png"}, "/films") == std::vector<std::string>{"p1/IM1", "x"});
  try {
    predict_output_names({"a/x.png", "b/y.png", "a/x.dcm"});
    FAIL("duplicate output names accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("a/x.dcm") != std::string::npos);
    CHECK(std::string(e.what()).find("a/x.png") != std::string::npos);
  }

  test::TempDir dir("predict_outputs_inputs");
  for (const char* name : {"b.png", "a.JPG", "a.json", "c.dcm", "notes.txt", "d.pgm"}) file_put(dir.path() / name, "x");
  fs::create_directories(dir.path() / "sub.png");
  file_put(dir.path() / "scan", std::string(128, '\0') + "DICM" + std::string(64, '\0'));  // DICOM, no extension
  file_put(dir.path() / "README", "notes about the films\n");
  const auto listed = predict_inputs_from_folder(dir.path().string());
  REQUIRE(listed.size() == 5);
  CHECK(fs::path(listed[0]).filename() == "a.JPG");
  CHECK(fs::path(listed[3]).filename() == "d.pgm");
  CHECK(fs::path(listed[4]).filename() == "scan");
  CHECK_THROWS_AS(predict_inputs_from_folder(dir.file("missing")), Error);

  file_put(dir.path() / "list.txt", "# films\nb.png\n\n{\"image\": \"sub/x.png\", \"schema\": \"lumbar-lateral\"}\n/abs/y.png\n");
  const auto m = predict_inputs_from_manifest(dir.file("list.txt"));
  REQUIRE(m.size() == 3);
  CHECK(m[0] == (dir.path() / "b.png").string());
  CHECK(m[1] == (dir.path() / "sub/x.png").string());
  CHECK(m[2] == "/abs/y.png");
  file_put(dir.path() / "bad.jsonl", "a.png\n{\"img\": 1}\n");
  try {
    predict_inputs_from_manifest(dir.file("bad.jsonl"));
    FAIL("bad manifest accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("bad.jsonl:2") != std::string::npos);
  }
  file_put(dir.path() / "empty.txt", "# nothing\n");
  CHECK_THROWS_AS(predict_inputs_from_manifest(dir.file("empty.txt")), Error);
}

TEST_CASE("predict summary: rows from prediction files, CSV quoting and empty numbers") {
  const Schema& s = schema_builtin("lumbar-lateral");
  PipelineResult r = result_make(s, 400, 400);
  r.angles[2] = NAN;
  r.flags = {"a:1", "b:2"};
  const auto j = prediction_to_json(s, r, "x.png", std::nullopt);
  const PredictSummaryRow row = predict_summary_row_from_json(j, "in/x.png", s.angles);
  CHECK(row.angles[0] == 12.5);
  CHECK(std::isnan(row.angles[2]));
  CHECK(row.flags == 2);
  CHECK(row.ms == 20.0);
  PredictSummaryRow err;
  err.image = "in/a,b.png", err.status = "error", err.error = "in/a,b.png: not a \"PNG\"";
  const std::string csv = predict_summary_csv(s.angles, {row, err});
  CHECK(csv.find("image,status," + s.angles[0]) == 0);
  CHECK(csv.find("in/x.png,ok,12.500,12.500,,2,20.0,\n") != std::string::npos);
  CHECK(csv.find("\"in/a,b.png\",error,,,,,,\"in/a,b.png: not a \"\"PNG\"\"\"\n") != std::string::npos);
}
