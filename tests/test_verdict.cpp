// The film-level verdict and the trust checks of the issue "Trustworthy outputs" §3
// (docs/pipeline.md "Verdict", docs/reliability.md): films without signal, far too small,
// with an undecodable level chain, rotated or seen through diffuse heatmaps; the prediction
// file, summary row and overlay of a verdict; model folders refused at load; angles in mm on
// anisotropic pixels. Every input is made by the test.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sys/wait.h>

#include "layers/weights.h"
#include "models/geometry/letterbox.h"
#include "models/image/image_io.h"
#include "models/measure/angles.h"
#include "models/pipeline/pipeline.h"
#include "models/pipeline/predict_inputs.h"
#include "models/pipeline/prediction_json.h"
#include "models/pipeline/prediction_overlay.h"
#include "layers/dsnt.h"
#include "tensor/file_io.h"
#include "tensor/safetensors.h"
#include "pipeline_oracle.h"
#include "test_support.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

using test::Oracle;
using test::oracle_pipeline;
ModelSpec spec_tiny(const Schema& schema) { return test::spec_tiny_pipeline(schema); }

bool has_prefix(const std::vector<std::string>& v, const std::string& prefix) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

struct Case {
  const Schema& schema = schema_builtin("lumbar-lateral");
  ModelSpec spec = model_spec_preset(schema, "small");
  SynthSample sample = synth_generate(schema, 31, 0, SynthOptions{384});
  std::shared_ptr<Oracle> oracle = std::make_shared<Oracle>(Oracle{schema, sample.annotation.points, {}, 4});
};

}  // namespace

TEST_CASE("verdict: a synthetic film seen by ground-truth networks is ok, with no reasons") {
  Case c;
  const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
  for (const auto& f : r.flags) MESSAGE(f);
  CHECK(r.status == "ok");
  CHECK(r.status_reasons.empty());
  const auto j = prediction_to_json(c.schema, r, "x.png", std::nullopt);
  CHECK(j["status"] == "ok");
  CHECK(j["angles"][c.schema.angles[2]].is_number());
}

TEST_CASE("verdict: an all-black film is rejected (no signal) and its angles are null, even with plausible corners") {
  Case c;
  Image black(c.sample.image.width, c.sample.image.height, 0.f);
  black.bits = 16;
  // The networks answer with a perfectly plausible spine: the sacral slope would read ~40°.
  const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(black);
  CHECK(r.status == "rejected");
  CHECK(has_prefix(r.status_reasons, "no_signal:"));
  const auto j = prediction_to_json(c.schema, r, "black.png", std::nullopt);
  CHECK(j["status"] == "rejected");
  REQUIRE(j["status_reasons"].is_array());
  for (const auto& a : c.schema.angles) {
    CHECK(j["angles"][a].is_null());
    CHECK(j["step1_angles"][a].is_null());
  }
  const PredictSummaryRow row = predict_summary_row_from_json(j, "black.png", c.schema.angles);
  CHECK(row.status == "rejected");
  CHECK(std::isnan(row.angles[2]));
  CHECK(predict_summary_csv(c.schema.angles, {row}).find("black.png,rejected,,,,") != std::string::npos);

  // The same with a real (untrained) network: whatever it answers, a black film is rejected.
  const SpineModel m = spine_model_create(spec_tiny(c.schema), 5);
  Image small_black(200, 160, 0.f);
  CHECK(Pipeline::from_model(m, Device::CPU).run(small_black).status == "rejected");
}

TEST_CASE("verdict: a film far too small is rejected") {
  Case c;
  Image tiny(48, 40, 0.f);
  for (int y = 0; y < tiny.height; ++y)
    for (int x = 0; x < tiny.width; ++x) tiny.at(x, y) = float((x * 37 + y * 11) % 200);
  const SpineModel m = spine_model_create(spec_tiny(c.schema), 5);
  const PipelineResult r = Pipeline::from_model(m, Device::CPU).run(tiny);
  CHECK(r.status == "rejected");
  CHECK(has_prefix(r.status_reasons, "too_small:48x40"));
}

TEST_CASE("verdict: a level chain that cannot be decoded is rejected") {
  SUBCASE("most levels outside the film") {
    Case c;
    c.oracle->centres = vertebra_centres(c.schema, c.sample.annotation.points);
    for (size_t v = 0; v + 2 < c.oracle->centres.size(); ++v) c.oracle->centres[v][0] = -500.0 - 10.0 * double(v);
    const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
    CHECK(r.status == "rejected");
    CHECK(has_prefix(r.status_reasons, "level_chain_not_decodable:"));
  }
  SUBCASE("levels not in order along the chain") {
    Case c;
    auto centres = vertebra_centres(c.schema, c.sample.annotation.points);
    std::swap(centres[0], centres[3]);
    std::swap(centres[1], centres[4]);
    c.oracle->centres = centres;
    const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
    for (const auto& f : r.flags) MESSAGE(f);
    CHECK(r.status == "rejected");
    CHECK(has_prefix(r.status_reasons, "level_chain_not_decodable:"));
  }
  SUBCASE("every level on one spot") {
    Case c;
    c.oracle->centres.assign(size_t(c.schema.vertebra_count()), Point2{190.0, 190.0});
    const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
    CHECK(r.status == "rejected");
    CHECK(has_prefix(r.status_reasons, "level_chain_not_decodable:"));
  }
}

TEST_CASE("verdict: a film turned by 90 degrees goes to review (spine_axis_rotated)") {
  Case c;
  const Image& f = c.sample.image;
  Image rot(f.height, f.width);  // turned clockwise: (x, y) -> (H − 1 − y, x)
  rot.bits = f.bits;
  for (int y = 0; y < f.height; ++y)
    for (int x = 0; x < f.width; ++x) rot.at(f.height - 1 - y, x) = f.at(x, y);
  for (Point2& p : c.oracle->gt) p = {f.height - 1 - p[1], p[0]};
  const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(rot);
  for (const auto& s : r.status_reasons) MESSAGE(s);
  CHECK(r.status == "review");
  CHECK(has_prefix(r.status_reasons, "spine_axis_rotated:"));
}

TEST_CASE("verdict: diffuse heatmaps (noise, chest, wrong view) go to review (heatmap_spread_large)") {
  Case c;
  c.oracle->spread = 60.0;  // input pixels of the 256-pixel step-1 input: a quarter of it
  const PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
  CHECK(r.status == "review");
  CHECK(has_prefix(r.status_reasons, "heatmap_spread_large:"));
  c.oracle->spread = 2.0;
  CHECK(oracle_pipeline(c.spec, c.oracle).run(c.sample.image).status == "ok");
}

TEST_CASE("verdict: summary rows carry ok/review/rejected/error; a prediction without status is review") {
  Case c;
  PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
  r.status = "review";
  r.status_reasons = {"levels_out_of_order:L2,L3"};
  const auto j = prediction_to_json(c.schema, r, "x.png", std::nullopt);
  CHECK(j["status_reasons"][0] == "levels_out_of_order:L2,L3");
  CHECK(predict_summary_row_from_json(j, "x.png", c.schema.angles).status == "review");
  CHECK(predict_summary_row_from_json(nlohmann::json::parse(R"({"angles": {}})"), "old.png", c.schema.angles).status == "review");
}

TEST_CASE("overlay: the verdict and its reasons are written in a margin beside the film, never over it") {
  Case c;
  PipelineResult r = oracle_pipeline(c.spec, c.oracle).run(c.sample.image);
  r.flags = {"levels_out_of_order:L3,L4", "detect_coarse_disagree:L4", "angle_out_of_range:sacral_slope"};
  pipeline_verdict(c.spec, r);
  REQUIRE(r.status == "review");
  const RgbImage plain = prediction_overlay(c.sample.image, c.schema, r, nullptr, 384);
  const int film_w = 384;
  CHECK(plain.width == film_w + prediction_overlay_margin_width(384, 384));
  CHECK(plain.height == 384);
  // Nothing is ringed (landmark_flagged all false), so no red (flag text) may touch the film
  // (before: the flags were written in red over the lower spine); the margin holds the text.
  int red_on_film = 0, text_in_margin = 0;
  for (int y = 0; y < plain.height; ++y)
    for (int x = 0; x < plain.width; ++x) {
      const uint8_t* p = &plain.rgb[3 * (size_t(y) * size_t(plain.width) + size_t(x))];
      if (x < film_w) red_on_film += p[0] > 200 && p[1] < 60 && p[2] < 60;
      else text_in_margin += p[0] > 150;  // the panel is (24, 24, 28)
    }
  CHECK(red_on_film == 0);
  CHECK(text_in_margin > 200);
  if (const char* keep = std::getenv("SPINEMARK_TEST_OVERLAY_DIR")) {  // to look at it
    overlay_write_png(std::string(keep) + "/verdict_review.png", plain);
    r.status = "rejected", r.status_reasons = {"no_signal:std=0.0000"};
    overlay_write_png(std::string(keep) + "/verdict_rejected.png", prediction_overlay(c.sample.image, c.schema, r, nullptr, 900));
  }
}

TEST_CASE("angles in mm: anisotropic pixels give the true angle, and the film is flagged") {
  const Schema& s = schema_builtin("lumbar-lateral");
  const SynthSample sample = synth_generate(s, 41, 0, SynthOptions{384});
  const std::vector<Point2>& mm = sample.annotation.points;  // a square-pixel film: the truth
  const std::vector<double> truth = angles_compute(s, mm, 384);
  // The same spine on a film with pixels 0.1 mm high and 0.15 mm wide (rows, cols).
  const PixelSpacing spacing = std::array<double, 2>{0.1, 0.15};
  std::vector<Point2> px = mm;
  for (Point2& p : px) p = {p[0] / 1.5, p[1]};
  const std::vector<double> naive = angles_compute(s, px, 384);
  const std::vector<double> in_mm = angles_compute(s, px, 384, spacing);
  double worst_naive = 0;
  for (size_t k = 0; k < truth.size(); ++k) {
    CHECK(in_mm[k] == doctest::Approx(truth[k]).epsilon(1e-9));
    worst_naive = std::max(worst_naive, std::fabs(naive[k] - truth[k]));
  }
  CHECK(worst_naive > 2.0);  // what measuring in pixels did
  CHECK(pixel_anisotropy_flag(spacing) == "anisotropic_pixels:1.500");
  CHECK(pixel_anisotropy_flag(std::array<double, 2>{0.2, 0.2}).empty());
  CHECK(pixel_anisotropy_flag(std::nullopt).empty());

  // Through the pipeline: the film's spacing is used, the flag raised, the verdict stays ok.
  Image film(256, 384);
  film.bits = 16;
  for (int y = 0; y < film.height; ++y)
    for (int x = 0; x < film.width; ++x) film.at(x, y) = sample.image.at(std::min(383, int(x * 1.5)), y);
  film.pixel_spacing_mm = spacing;
  const ModelSpec spec = model_spec_preset(s, "small");
  auto oracle = std::make_shared<Oracle>(Oracle{s, px, {}, 4});
  const PipelineResult r = oracle_pipeline(spec, oracle).run(film);
  for (size_t k = 0; k < truth.size(); ++k) CHECK(r.angles[k] == doctest::Approx(truth[k]).epsilon(1e-6));
  CHECK(std::find(r.flags.begin(), r.flags.end(), "anisotropic_pixels:1.500") != r.flags.end());
  for (const auto& f : r.status_reasons) MESSAGE(f);
  CHECK(r.status == "ok");

  // `spinemark angles` on an annotation with that spacing: the angles in mm, and the flag.
  test::TempDir dir("verdict_angles");
  Annotation a = sample.annotation;
  a.points = px;
  a.pixel_spacing_mm = spacing;
  a.image = "f.png";
  file_write_atomic(dir.file("f.json"), annotation_to_json(a, s).dump());
  const std::string out = dir.file("angles.jsonl");
  const int rc = std::system((std::string(SPINEMARK_BINARY_DIR) + "/spinemark angles --data " + dir.path().string() + " >" + out).c_str());
  REQUIRE(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 0);
  const auto line = nlohmann::json::parse(file_read_all(out));
  for (size_t k = 0; k < truth.size(); ++k) CHECK(line["angles"][s.angles[k]].get<double>() == doctest::Approx(truth[k]).epsilon(1e-9));
  CHECK(line["flags"][0] == "anisotropic_pixels:1.500");
}

TEST_CASE("model folder: non-finite weights, negative variances, swapped weights and bad model.json are refused") {
  const Schema& schema = schema_builtin("lumbar-lateral");
  test::TempDir dir("verdict_model");
  const std::string good = dir.file("good");
  SpineModel m = spine_model_create(spec_tiny(schema), 3);
  spine_model_save(good, m);
  CHECK_NOTHROW(spine_model_load(good));
  const nlohmann::json j0 = nlohmann::json::parse(file_read_all(good + "/model.json"));
  REQUIRE(j0.contains("weights_fnv1a64"));

  auto expect_error = [&](const std::string& folder, const std::vector<std::string>& needles) {
    try {
      spine_model_load(folder);
      FAIL("loading " << folder << " should fail");
    } catch (const Error& e) {
      CAPTURE(e.what());
      for (const auto& n : needles) CHECK(std::string(e.what()).find(n) != std::string::npos);
    }
  };
  // Weights saved with a NaN / a negative running variance (hashes recorded: only the values are wrong).
  auto poisoned = [&](const std::string& name, const std::string& tensor_suffix, float value) {
    SpineModel p = spine_model_create(spec_tiny(schema), 3);
    std::string hit;
    for (auto& [n, t] : module_named_tensors(*p.coarse))
      if (hit.empty() && n.size() >= tensor_suffix.size() && n.compare(n.size() - tensor_suffix.size(), tensor_suffix.size(), tensor_suffix) == 0) {
        t.f32()[0] = value;
        hit = n;
      }
    REQUIRE(!hit.empty());
    spine_model_save(dir.file(name), p);
    return hit;
  };
  const std::string nan_tensor = poisoned("nan", "conv1.weight", NAN);
  expect_error(dir.file("nan"), {"coarse.safetensors", nan_tensor, "finite"});
  const std::string inf_tensor = poisoned("inf", "head.weight", INFINITY);
  expect_error(dir.file("inf"), {"coarse.safetensors", inf_tensor});
  const std::string var_tensor = poisoned("var", "running_var", -1.0f);
  expect_error(dir.file("var"), {"coarse.safetensors", var_tensor, "negative variance"});

  // A weights file changed after saving: the recorded hash no longer matches.
  const std::string swapped = dir.file("swapped");
  fs::copy(good, swapped, fs::copy_options::recursive);
  fs::copy_file(dir.file("nan") + "/coarse.safetensors", swapped + "/coarse.safetensors", fs::copy_options::overwrite_existing);
  expect_error(swapped, {"coarse.safetensors", "FNV-1a"});

  // model.json edits: an unknown key, a missing key, a value out of range, no hashes (older folder).
  auto edited = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string d = dir.file(name);
    fs::copy(good, d, fs::copy_options::recursive);
    nlohmann::json j = j0;
    edit(j);
    file_write_atomic(d + "/model.json", j.dump(2));
    return d;
  };
  expect_error(edited("unknown", [](nlohmann::json& j) { j["refine_pases"] = 3; }), {"unknown key 'refine_pases'"});
  expect_error(edited("missing", [](nlohmann::json& j) { j.erase("refine_passes"); }), {"'refine_passes' is missing"});
  expect_error(edited("flags", [](nlohmann::json& j) { j["flags"].erase("refine_shift"); }), {"flags: 'refine_shift' is missing"});
  expect_error(edited("shift", [](nlohmann::json& j) { j["flags"]["refine_shift"] = 1e6; }), {"refine_shift", "outside 0.05..5"});
  expect_error(edited("legacy", [](nlohmann::json& j) { j.erase("weights_fnv1a64"); }), {"re-save"});
}
