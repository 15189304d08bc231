// Spine samples through the loader: synthetic radiographs -> letterboxed, augmented,
// standardised batches whose targets sit on the landmarks; identical for any thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "layers/dsnt.h"
#include "models/geometry/letterbox.h"
#include "train/data/spine_samples.h"
#include "test_support.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {
std::vector<DatasetEntry> synth_dataset(const fs::path& dir, int count) {
  fs::create_directories(dir);
  const Schema& schema = schema_builtin("lumbar-lateral");
  SynthOptions o;
  o.size = 160;
  for (int i = 0; i < count; ++i) synth_write(dir.string(), "s" + std::to_string(i), synth_generate(schema, 5, uint64_t(i), o), schema, 8);
  return dataset_list(dir.string());
}
std::vector<float> all_batches(SampleFn fn, const LoaderConfig& c) {
  Loader loader(c, fn);
  loader.epoch_start(2);
  std::vector<float> v;
  Batch b;
  while (loader.next(b)) {
    auto x = b.images.to_vector_f32(), t = b.targets.to_vector_f32();
    v.insert(v.end(), x.begin(), x.end());
    v.insert(v.end(), t.begin(), t.end());
  }
  return v;
}
}  // namespace

TEST_CASE("targets are the letterboxed landmarks, normalised over the input") {
  test::TempDir tmp("spine_samples_a");
  const fs::path& dir = tmp.path();
  auto entries = synth_dataset(dir, 2);
  const Schema& schema = schema_builtin("lumbar-lateral");
  SpineSampleConfig cfg;
  cfg.input_width = 64;
  cfg.input_height = 96;  // taller than wide: the square synth image is padded top and bottom
  cfg.augment = false;
  SampleFn fn = spine_sample_fn(entries, schema, cfg);
  Sample s = fn(0, 1);
  REQUIRE(s.image.size() == size_t(64 * 96));
  double mean = 0;
  for (float v : s.image) mean += v;
  CHECK(std::fabs(mean / s.image.size()) < 1e-4);
  Letterbox lb = letterbox_fit(160, 160, 64, 96);
  for (int k = 0; k < schema.landmark_count(); ++k) {
    Point2 q = letterbox_forward(lb, entries[1].annotation.points[size_t(k)]);
    CHECK(s.targets[size_t(2 * k)] == doctest::Approx(dsnt_normalise(q[0], 64)).epsilon(1e-6));
    CHECK(s.targets[size_t(2 * k + 1)] == doctest::Approx(dsnt_normalise(q[1], 96)).epsilon(1e-6));
    CHECK(s.visible[size_t(k)] == 1.f);
  }
}

TEST_CASE("augmented batches are identical for 1 and 3 worker threads") {
  test::TempDir tmp("spine_samples_b");
  const fs::path& dir = tmp.path();
  auto entries = synth_dataset(dir, 6);
  const Schema& schema = schema_builtin("lumbar-lateral");
  SpineSampleConfig cfg;
  cfg.input_width = 48;
  cfg.input_height = 64;
  cfg.seed = 11;
  LoaderConfig c = spine_loader_config(cfg, schema, entries.size(), 2);
  c.threads = 1;
  auto one = all_batches(spine_sample_fn(entries, schema, cfg), c);
  c.threads = 3;
  auto three = all_batches(spine_sample_fn(entries, schema, cfg), c);
  CHECK(one.size() == size_t(6 * (48 * 64 + 22 * 2)));
  CHECK(one == three);
}

TEST_CASE("a dataset of another schema is refused with the entry named") {
  test::TempDir tmp("spine_samples_c");
  const fs::path& dir = tmp.path();
  auto entries = synth_dataset(dir, 1);
  CHECK_THROWS_WITH_AS(spine_sample_fn(entries, schema_builtin("aasce-ap"), SpineSampleConfig{}), doctest::Contains("s0"), Error);
}
