// One training loop for all three networks (detect, coarse, refine): DSNT loss (Euclidean +
// λ·JS), Adam or RMSprop with warm-up and cosine decay, validation at fixed step intervals with
// the best weights kept by VALIDATION LANDMARK ERROR (never by loss, method.md §6), atomic
// checkpoints, a bit-identical resume, a clean stop on Ctrl-C or at a time budget, and a stop
// with a clear message on NaN/inf (the last good checkpoint stays).
// Stage folder: options.json, metrics.jsonl, ckpt-<step>.{weights,state}.safetensors (the last
// two), checkpoint.json (names the latest complete pair; written after both files, so a kill at
// any moment leaves a loadable checkpoint), best.safetensors, curves.png.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "models/nets/dsnt_net.h"
#include "train/data/loader.h"
#include "train/dist/communicator.h"

namespace sm {

struct StageOptions {
  std::string name;              // "detect", "coarse", "refine"
  int batch = 16;
  int64_t steps = 0;             // optimizer steps; 0: planned from `minutes` (stage_steps_plan)
  double minutes = 0;            // time budget; also a hard stop (0: none)
  std::string optimizer = "adam";  // adam | adamw | rmsprop
  double lr = 1e-3, weight_decay = 0;
  int64_t warmup_steps = 50;
  double min_lr_factor = 0.01;   // cosine decays to lr · this
  double sigma = 1.0, js_lambda = 1.0;  // DSNT loss (method.md §4)
  double grad_clip = 0;          // global-norm clipping; 0: off
  int validations = 8;           // validations over the run (evenly spaced, the last at the end)
  int log_every = 10;
  int loader_threads = 1;
  int64_t stop_after_steps = 0;  // behave as if interrupted after this many steps (fault tests)
  // Where the network, its gradients, the optimizer state, the batches and the losses live
  // (the run's device, not a key of the stage JSON). Batches are built on the CPU by the loader's
  // threads and uploaded once per step; the loss and the gradient norm come back as scalars.
  Device device = Device::CPU;
};

nlohmann::json stage_options_to_json(const StageOptions& o);
// Keys not given keep `defaults`; unknown keys and out-of-range values fail naming the key.
StageOptions stage_options_from_json(const nlohmann::json& j, const StageOptions& defaults, const std::string& where);

struct StageHooks {
  // Mean landmark error in original-image pixels on the validation split (lower is better).
  std::function<double(DsntNet&)> validate;
  std::function<void(const std::string&)> log;  // one progress line (the app prints it)
  // The ranks of a data-parallel run (docs/scaling.md), or null for one process. Each rank
  // trains on its slice of every batch; gradients, the loss and BatchNorm's statistics are
  // summed over the ranks, so the weights are those of one process on the whole batch; only
  // rank 0 writes the stage folder; every rank validates (the same weights: the same error).
  Communicator* comm = nullptr;
};

struct StageResult {
  bool completed = false;       // reached `steps`
  std::string stop_reason;      // "", "interrupted", "time budget", "stop_after_steps"
  int64_t steps_done = 0;
  double best_val = 0;
  int64_t best_step = 0;
  double seconds = 0;
};

// Measures a few training steps (on a throwaway copy of the network, so the run itself is not
// touched) and one validation, and returns the step count that fits options.minutes.
int64_t stage_steps_plan(const StageOptions& o, const DsntNetConfig& net, const LoaderConfig& loader, const SampleFn& make,
                         const StageHooks& hooks);

// The prefix of the stage folder's latest complete checkpoint ("" when there is none).
std::string stage_checkpoint_latest(const std::string& stage_dir);

// Trains `net` in place, on o.device (the network is moved there for the stage and back to the
// device it came on at the end); at the end `net` holds the BEST validated weights. With resume, the
// stage folder's checkpoint is loaded first (it must exist) and training continues exactly.
StageResult stage_train(const StageOptions& o, DsntNet& net, const LoaderConfig& loader, const SampleFn& make,
                        const std::string& stage_dir, bool resume, const StageHooks& hooks);

}  // namespace sm
