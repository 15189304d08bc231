// The main job (`spinemark demo`): a synthetic lateral lumbar dataset is generated, the three
// networks are trained with the small preset inside a time budget, the model is evaluated on a
// held-out synthetic test set and the report is written. The output folder holds everything a
// reader needs to check the numbers with their own tools:
//   data/train, data/val, data/test  images + annotations (names unique across the splits)
//   run/                             the training run (config, logs, checkpoints, model/)
//   report/                          metrics.json, report.html, predictions/ for the test set
#pragma once
#include <functional>
#include <string>

#include "train/eval/eval.h"

namespace sm {

struct DemoOptions {
  std::string out = "demo";
  double minutes = 15;       // everything: data, training, evaluation
  int train_images = 1500, val_images = 150, test_images = 100;
  int image_size = 512;
  uint64_t seed = 1;
  int threads = 2;
  bool resume = false;       // reuse generated data and continue an interrupted run
  std::function<void(const std::string&)> log;
};

struct DemoResult {
  EvalResult eval;
  std::string report, model_dir;
  double seconds = 0;
  bool completed = false;
};

DemoResult demo_run(const DemoOptions& options);

}  // namespace sm
