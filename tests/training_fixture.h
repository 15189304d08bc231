// Helpers of the training tests (test_training, test_trust): a run config with tiny networks and
// inputs, so that three stages train in seconds, and a folder of small synthetic films.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "test_support.h"
#include "train/run/train_config.h"
#include "train/synth/synth.h"

namespace sm::test {

// 4–8 channels, one block per stage, 64-pixel films, 32-pixel crops, 6 steps per stage; a
// quarter of `data` held out for validation.
inline TrainConfig config_tiny(const std::string& data) {
  TrainConfig c = train_config_from_json(nlohmann::json::parse(R"({
    "schema": "lumbar-lateral", "preset": "small",
    "model": {"detect": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
              "coarse": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
              "refine": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [32, 32]}},
    "data": {"train": "", "val_fraction": 0.25},
    "seed": 5, "threads": 2,
    "stages": {"detect": {"steps": 6, "batch": 2, "validations": 2, "warmup_steps": 2},
               "coarse": {"steps": 6, "batch": 2, "validations": 2, "warmup_steps": 2},
               "refine": {"steps": 6, "batch": 4, "validations": 2, "warmup_steps": 2}}})"), "test");
  c.train_data = data;
  return c;
}

// DIR/<name>: `n` synthetic lateral lumbar films of 192 px (seed 21) with their annotations.
inline std::string synth_folder(const TempDir& dir, const std::string& name = "data", int n = 8) {
  const std::string data = dir.file(name);
  std::filesystem::create_directories(data);
  const Schema& s = schema_builtin("lumbar-lateral");
  for (int i = 0; i < n; ++i) synth_write(data, "f" + std::to_string(i), synth_generate(s, 21, uint64_t(i), SynthOptions{192}), s, 16);
  return data;
}

}  // namespace sm::test
