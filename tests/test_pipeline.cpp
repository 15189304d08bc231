// The 2-step pipeline's geometry with the networks replaced by ground truth (letterbox, crops,
// mirroring and back-mapping must return the true corners to 1e-6 px and the angles of §3), and
// the model folder (round trip, and one clear error for a missing, truncated or mismatched file).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "layers/dsnt.h"
#include "layers/weights.h"
#include "models/measure/angles.h"
#include "models/pipeline/pipeline.h"
#include "tensor/file_io.h"
#include "pipeline_oracle.h"
#include "test_support.h"
#include "train/data/refine_samples.h"
#include "train/synth/synth.h"

using namespace sm;

namespace {

using test::Oracle;
using test::oracle_pipeline;

double max_error(const std::vector<Point2>& a, const std::vector<Point2>& b) {
  double m = 0;
  for (size_t k = 0; k < a.size(); ++k) m = std::max(m, std::hypot(a[k][0] - b[k][0], a[k][1] - b[k][1]));
  return m;
}

// The film mirrored left-right (a patient facing the other way; names are anatomical).
void film_mirror(Image& film, std::vector<Point2>& pts) {
  for (int y = 0; y < film.height; ++y)
    std::reverse(film.data.begin() + long(y) * film.width, film.data.begin() + long(y + 1) * film.width);
  for (Point2& p : pts) p[0] = film.width - 1 - p[0];
}

// A window of the film (x0, y0, w, h): a non-square film whose letterbox pads.
void film_window(Image& film, std::vector<Point2>& pts, int x0, int y0, int w, int h) {
  Image out(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) out.at(x, y) = film.at(x0 + x, y0 + y);
  film = out;
  for (Point2& p : pts) p = {p[0] - x0, p[1] - y0};
}

ModelSpec spec_tiny(const Schema& schema) { return test::spec_tiny_pipeline(schema); }

}  // namespace

TEST_CASE("pipeline with ground-truth networks returns the true corners and angles (square, mirrored, padded films)") {
  const Schema& schema = schema_builtin("lumbar-lateral");
  const ModelSpec spec = model_spec_preset(schema, "small");
  for (int variant = 0; variant < 3; ++variant)
    for (uint64_t index = 0; index < 3; ++index) {
      CAPTURE(variant);
      CAPTURE(index);
      SynthSample s = synth_generate(schema, 11, index);
      Image film = s.image;
      std::vector<Point2> gt = s.annotation.points;
      if (variant == 1) film_mirror(film, gt);
      if (variant == 2) film_window(film, gt, 40, 10, 380, 480);
      auto oracle = std::make_shared<Oracle>(Oracle{schema, gt, {}, spec.refine.net.landmarks});
      const PipelineResult r = oracle_pipeline(spec, oracle).run(film);
      CHECK(max_error(r.landmarks, gt) < 1e-6);
      CHECK(max_error(r.centres, vertebra_centres(schema, gt)) < 1e-6);
      CHECK(max_error(r.step1, gt) < 1e-6);
      const std::vector<double> truth = angles_compute(schema, gt, film.height);
      REQUIRE(r.angles.size() == truth.size());
      for (size_t k = 0; k < truth.size(); ++k) CHECK(r.angles[k] == doctest::Approx(truth[k]).epsilon(1e-9));
      // A mirrored patient faces the other way: the crops must be mirrored exactly then.
      CHECK(r.mirrored[0] == angles_mirror(schema, gt));
      CHECK(r.flags.empty());
      for (const std::string& f : r.flags) MESSAGE(f);
    }
}

TEST_CASE("quality flags: a level on the wrong vertebra and a wandering refinement are flagged") {
  const Schema& schema = schema_builtin("lumbar-lateral");
  const ModelSpec spec = model_spec_preset(schema, "small");
  SynthSample s = synth_generate(schema, 12, 0);
  auto oracle = std::make_shared<Oracle>(Oracle{schema, s.annotation.points, {}, spec.refine.net.landmarks});
  PipelineResult r = oracle_pipeline(spec, oracle).run(s.image);
  REQUIRE(r.flags.empty());
  r.centres[2] = r.centres[1];  // L3's channel on L2: two levels on one vertebra
  r.landmarks[0][0] += 40;      // L1.sup_ant pulled far from step 1
  pipeline_flags(spec, r);
  auto has = [&](const std::string& f) { return std::find(r.flags.begin(), r.flags.end(), f) != r.flags.end(); };
  CHECK(has("levels_out_of_order:L2,L3"));
  CHECK(has("detect_coarse_disagree:L3"));
  CHECK(has("refine_far_from_step1:L1.sup_ant"));
  CHECK(r.landmark_flagged[0]);
  CHECK(r.landmark_flagged[size_t(schema.landmark_index("L3.inf_ant"))]);
  CHECK_FALSE(r.landmark_flagged[size_t(schema.landmark_index("L5.inf_ant"))]);
}

TEST_CASE("refinement samples: the ground-truth crop targets the true corners; crop errors invert") {
  const Schema& schema = schema_builtin("lumbar-lateral");
  const ModelSpec spec = model_spec_preset(schema, "small");
  CropParams t;
  t.centre = {100, 200}, t.angle = 0.3, t.side = 60, t.size = 64;
  CropParams s = t;
  s.centre = {104, 197}, s.angle = 0.41, s.side = 66;
  const CropParams back = crop_error_apply(t, crop_error(t, s));
  CHECK(back.centre[0] == doctest::Approx(s.centre[0]).epsilon(1e-12));
  CHECK(back.centre[1] == doctest::Approx(s.centre[1]).epsilon(1e-12));
  CHECK(back.angle == doctest::Approx(s.angle).epsilon(1e-12));
  CHECK(back.side == doctest::Approx(s.side).epsilon(1e-12));

  test::TempDir dir("refine_samples");
  synth_write(dir.path().string(), "a", synth_generate(schema, 5, 0), schema, 16);
  auto films = std::make_shared<FilmCache>(dataset_list(dir.path().string()));
  RefineSampleConfig rc;
  rc.augment = false;
  RefineSamples samples(films, spec, rc);
  CHECK(samples.pairs().size() == size_t(schema.vertebra_count()));
  const Sample smp = samples.sample_fn()(0, 5);  // S1: 2 corners, channels 2 and 3 masked
  CHECK(smp.visible == std::vector<float>{1, 1, 0, 0});
  const Sample l3 = samples.sample_fn()(0, 2);
  const std::vector<Point2>& gt = films->entry(0).annotation.points;
  const CropParams crop = crop_params_from_vertebra(schema, gt, 2, 64, spec.crop_margin);
  const bool mirror = refine_mirror(spec, gt);
  const auto idx = schema.vertebra_landmarks(2);
  for (size_t c = 0; c < 4; ++c) {
    const Point2 u = refine_crop_from_image(crop, mirror, gt[size_t(idx[c])]);
    CHECK(l3.targets[2 * c] == doctest::Approx(dsnt_normalise(u[0], 64)).epsilon(1e-6));
    CHECK(l3.targets[2 * c + 1] == doctest::Approx(dsnt_normalise(u[1], 64)).epsilon(1e-6));
  }
  CHECK(l3.image.size() == 64u * 64u);
}

TEST_CASE("model folder: round trip, and a missing, truncated or mismatched file fails naming it") {
  namespace fs = std::filesystem;
  const Schema& schema = schema_builtin("lumbar-lateral");
  test::TempDir dir("model_folder");
  const std::string m = dir.file("model");
  const SpineModel a = spine_model_create(spec_tiny(schema), 3);
  spine_model_save(m, a);
  spine_model_save(m, a);  // over an existing folder
  CHECK(fs::exists(fs::path(m) / "model.json"));
  CHECK_FALSE(fs::exists(dir.file("model.tmp." + std::to_string(::getpid()))));
  const SpineModel b = spine_model_load(m);
  CHECK(b.spec.schema.name == "lumbar-lateral");
  CHECK(b.spec.refine.input_width == 32);
  const SynthSample s = synth_generate(schema, 13, 0, SynthOptions{256});
  const PipelineResult ra = Pipeline::from_model(a, Device::CPU).run(s.image);
  const PipelineResult rb = Pipeline::from_model(b, Device::CPU).run(s.image);
  CHECK(max_error(ra.landmarks, rb.landmarks) == 0.0);

  auto expect_error = [&](const std::string& folder, const std::string& needle) {
    try {
      spine_model_load(folder);
      FAIL("loading " << folder << " should fail");
    } catch (const Error& e) {
      CAPTURE(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  const std::string missing = dir.file("missing"), truncated = dir.file("truncated"), mismatched = dir.file("mismatched");
  for (const auto& d : {missing, truncated, mismatched}) fs::copy(m, d, fs::copy_options::recursive);
  fs::remove(fs::path(missing) / "refine.safetensors");
  expect_error(missing, "refine.safetensors");
  const std::string bytes = file_read_all((fs::path(truncated) / "coarse.safetensors").string());
  file_write_atomic((fs::path(truncated) / "coarse.safetensors").string(), bytes.substr(0, bytes.size() / 2));
  expect_error(truncated, "coarse.safetensors");
  nlohmann::json j = nlohmann::json::parse(file_read_all((fs::path(mismatched) / "model.json").string()));
  j["coarse"]["landmarks"] = 21;
  file_write_atomic((fs::path(mismatched) / "model.json").string(), j.dump());
  expect_error(mismatched, "coarse has 21 channels");
  expect_error(dir.file("nowhere"), "not a model folder");
  // Weights of another schema's model under this model.json: names match, shapes do not.
  const std::string other = dir.file("other");
  fs::copy(m, other, fs::copy_options::recursive);
  ModelSpec cerv = spec_tiny(schema);
  cerv.detect.net.landmarks = 3;
  Rng rng(1);
  weights_save((fs::path(other) / "detect.safetensors").string(), DsntNet(cerv.detect.net, rng));
  expect_error(other, "detect.safetensors");
}
