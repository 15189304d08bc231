// Data loader: identical batches for any thread count, complete epochs, resume mid-epoch,
// worker errors reach the consumer.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <set>

#include "tensor/rng.h"
#include "train/data/loader.h"

using namespace sm;

namespace {
LoaderConfig small_config(int threads) {
  LoaderConfig c;
  c.size = 37;
  c.batch = 5;
  c.height = 4;
  c.width = 3;
  c.landmarks = 2;
  c.seed = 99;
  c.threads = threads;
  c.prefetch = 3;
  return c;
}
// A sample that depends only on (epoch, index), with some random "augmentation".
Sample fake_sample(uint64_t epoch, uint64_t index) {
  Rng rng = Rng(99).derive("augment", epoch * 1000 + index);
  Sample s;
  for (int k = 0; k < 12; ++k) s.image.push_back(float(index) + float(rng.uniform()));
  s.targets = {float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), 0.f, 0.f};
  s.visible = {1.f, index % 3 ? 1.f : 0.f};
  return s;
}
std::vector<std::vector<float>> epoch_batches(int threads, uint64_t epoch) {
  Loader loader(small_config(threads), fake_sample);
  loader.epoch_start(epoch);
  std::vector<std::vector<float>> out;
  Batch b;
  while (loader.next(b)) {
    std::vector<float> v = b.images.to_vector_f32();
    std::vector<float> t = b.targets.to_vector_f32();
    v.insert(v.end(), t.begin(), t.end());
    out.push_back(v);
  }
  return out;
}
}  // namespace

TEST_CASE("batches are identical for 1, 2 and 4 threads") {
  auto a = epoch_batches(1, 3), b = epoch_batches(2, 3), c = epoch_batches(4, 3);
  CHECK(a.size() == 7);  // 37 / 5, drop_last
  CHECK(a == b);
  CHECK(a == c);
  CHECK(epoch_batches(2, 4) != a);  // another epoch, another order and augmentation
}

TEST_CASE("an epoch visits distinct samples; resume mid-epoch continues exactly") {
  Loader loader(small_config(2), fake_sample);
  loader.epoch_start(1);
  std::set<uint64_t> seen;
  std::vector<Batch> all;
  Batch b;
  while (loader.next(b)) {
    for (uint64_t i : b.indices) CHECK(seen.insert(i).second);
    all.push_back(b);
  }
  CHECK(seen.size() == 35);
  Loader resumed(small_config(3), fake_sample);
  resumed.epoch_start(1, 4);
  REQUIRE(resumed.next(b));
  CHECK(b.number == 4);
  CHECK(b.indices == all[4].indices);
  CHECK(b.images.to_vector_f32() == all[4].images.to_vector_f32());
}

TEST_CASE("a worker's error reaches the consumer with its message") {
  Loader loader(small_config(2), [](uint64_t, uint64_t index) -> Sample {
    if (index == 7) SM_FAIL("corrupt image for sample 7");
    return fake_sample(0, index);
  });
  loader.epoch_start(0);
  Batch b;
  CHECK_THROWS_WITH_AS([&] { while (loader.next(b)) {} }(), doctest::Contains("sample 7"), Error);
}

TEST_CASE("bad configurations are refused") {
  LoaderConfig c = small_config(1);
  c.size = 3;
  CHECK_THROWS_AS(Loader(c, fake_sample), Error);
  c = small_config(0);
  CHECK_THROWS_AS(Loader(c, fake_sample), Error);
}

TEST_CASE("shards: the slices of 1, 2 and 3 processes put together are the unsharded batches, rows in order") {
  // Batch of 5 over 3 shards: rows [0, 1), [1, 3), [3, 5) (n·k/N).
  for (int shards : {1, 2, 3, 5}) {
    CAPTURE(shards);
    std::vector<std::unique_ptr<Loader>> owned;
    for (int k = 0; k < shards; ++k) {
      LoaderConfig c = small_config(2);
      c.shard = k, c.shards = shards;
      owned.push_back(std::make_unique<Loader>(c, fake_sample));
      owned.back()->epoch_start(3);
    }
    Loader whole(small_config(1), fake_sample);
    whole.epoch_start(3);
    Batch all;
    while (whole.next(all)) {
      std::vector<uint64_t> indices;
      std::vector<float> images;
      for (auto& l : owned) {
        Batch part;
        REQUIRE(l->next(part));
        CHECK(part.rows_total == 5);
        CHECK(part.images.size(0) >= 1);
        indices.insert(indices.end(), part.indices.begin(), part.indices.end());
        const std::vector<float> v = part.images.to_vector_f32();
        images.insert(images.end(), v.begin(), v.end());
      }
      CHECK(indices == all.indices);
      CHECK(images == all.images.to_vector_f32());
    }
    for (auto& l : owned) {
      Batch part;
      CHECK_FALSE(l->next(part));
    }
  }
  LoaderConfig c = small_config(1);
  c.shards = 6;  // more processes than rows in a batch
  CHECK_THROWS_WITH_AS(Loader(c, fake_sample), doctest::Contains("cannot be shared by 6 processes"), Error);
}
