// Fuzz target: checkpoint state files (train/run/checkpoint.cpp). The weights file is a valid one of
// a fixed tiny network; the fuzzed bytes are its training-state file (safetensors with the
// optimizer's moments and step, RNG states, data position and extra JSON as metadata).
#include "checkpoint_fixture.h"
#include "fuzz_support.h"
#include "tensor/file_io.h"

namespace {

struct Harness {
  sm::fuzz::CheckpointFixture fixture;
  std::string prefix = (sm::fuzz::scratch_dir() / "ckpt").string();
  Harness() { sm::checkpoint_save(prefix, *fixture.net, *fixture.adam, sm::fuzz::CheckpointFixture::state()); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  sm::file_write_atomic(sm::checkpoint_paths(h.prefix).state, sm::fuzz::bytes_of(data, size));
  sm::fuzz::expect_sm_error_only([&] {
    const sm::TrainState s = sm::checkpoint_load(h.prefix, *h.fixture.net, *h.fixture.adam);
    for (const auto& [name, st] : s.rngs) (void)sm::train_state_rng(s, name);
  });
  return 0;
}
