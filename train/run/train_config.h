// The run config (JSON, method.md §6): every hyperparameter, data paths, split, seed and preset
// of a training run. A run folder keeps the resolved copy (config.json: defaults filled in and
// step counts planned from time budgets), so the same file reproduces the run bit for bit.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "train/data/augment.h"
#include "train/data/refine_samples.h"
#include "train/run/stage_trainer.h"

namespace sm {

struct TrainConfig {
  std::string schema = "lumbar-lateral";  // built-in name or a schema JSON file
  std::string preset = "small";
  nlohmann::json model = nlohmann::json::object();  // model_spec_override keys
  std::string train_data;        // dataset folder or .jsonl manifest
  std::string val_data;          // optional; else val_fraction of train_data, split by seed
  double val_fraction = 0.1;
  int val_images_max = 200;      // validation images used during training
  // Annotations whose "flags" list holds one of these are left out of training and validation
  // (e.g. the AASCE importer's irregular_order: identity would not follow anatomy, §7.1).
  std::vector<std::string> exclude_flags;
  uint64_t seed = 1;
  int threads = 2;
  // The float32 CPU kernel family (tensor/kernels/context.h): "auto" (the fastest this CPU runs,
  // or SPINEMARK_CPU_KERNELS) or one pinned family: portable, scalar, avx2, avx512. Runs are
  // bit-identical only within one family; "portable" gives the same family on any x86-64.
  std::string cpu_kernels = "auto";
  // Where the networks train (docs/training.md, "Training on a GPU"): "cpu" or "cuda" (networks,
  // optimizer state, batches and losses on the GPU; images decoded and augmented on the CPU).
  // `spinemark train --device` overrides it, on --resume too: a run moves between devices.
  std::string device = "cpu";
  // GPU math: deterministic = cuDNN's fixed (heuristic-ordered, deterministic) algorithms, so two
  // runs with one seed give bit-identical weights; false = algorithms measured per shape (faster,
  // not bit-identical). tf32 = TF32 tensor cores for convolutions and GEMMs on Ampere and newer
  // (false: full float32, as the CPU).
  bool gpu_deterministic = true;
  bool gpu_tf32 = true;
  StageOptions detect, coarse, refine;
  AugmentOptions augment;        // step-1 augmentation
  AugmentOptions refine_intensity;  // intensity changes of refinement crops
  RefineJitter jitter;           // refinement jitter (measured errors are added by the run)
};

// The defaults of a preset (the stage options that the "small" preset trains well with).
TrainConfig train_config_default(const std::string& preset);
TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json train_config_to_json(const TrainConfig& c);
TrainConfig train_config_read(const std::string& path);

nlohmann::json augment_options_to_json(const AugmentOptions& o);
AugmentOptions augment_options_from_json(const nlohmann::json& j, const AugmentOptions& defaults, const std::string& where);

}  // namespace sm
