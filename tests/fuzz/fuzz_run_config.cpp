// Fuzz target: run configs (train/run/train_config.cpp, the JSON of `spinemark train --config`).
// A config that is accepted must write and read back to the same resolved JSON.
#include "fuzz_json.h"
#include "train/run/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = sm::fuzz::json_of(data, size);
  if (!j) return 0;
  sm::fuzz::expect_sm_error_only([&] {
    const sm::TrainConfig c = sm::train_config_from_json(*j, "fuzz.json");
    const nlohmann::json resolved = sm::train_config_to_json(c);
    if (sm::train_config_to_json(sm::train_config_from_json(resolved, "fuzz.resolved.json")) != resolved) {
      std::fprintf(stderr, "fuzz: a run config changed through its resolved JSON\n");
      std::abort();
    }
  });
  return 0;
}
