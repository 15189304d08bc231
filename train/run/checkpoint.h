// Checkpoints (style.md rule 23, llm.c's bit-identical resume): a weights file (safetensors,
// PyTorch names, layers/weights) plus a training-state file (safetensors too): optimizer moments
// and step as named tensors, every RNG state, the data position and free-form JSON as metadata.
// Both are written atomically; the state file records a hash of the weights file so that a
// mismatched or half-updated pair is refused. Loading checks everything before changing anything.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "layers/module.h"
#include "tensor/rng.h"
#include "train/optim/optimizer.h"

namespace sm {

struct TrainState {
  int64_t step = 0;           // optimizer steps taken
  int64_t epoch = 0;
  int64_t data_position = 0;  // samples consumed in the current epoch
  std::map<std::string, Rng::State> rngs;  // every named stream: "shuffle", "augment", ...
  std::string extra_json = "{}";           // anything else (a JSON value)
};

struct CheckpointPaths {
  std::string weights;  // <prefix>.weights.safetensors
  std::string state;    // <prefix>.state.safetensors
};
CheckpointPaths checkpoint_paths(const std::string& prefix);

// Writes the weights file, then the state file (each atomically). prefix: e.g. "run/ckpt_001000".
void checkpoint_save(const std::string& prefix, const Module& module, const Optimizer& optimizer, const TrainState& state);

// Reads both files, checks the pair (weights hash), every weight and optimizer tensor name,
// shape and dtype, the optimizer kind and the metadata, then restores the module's weights and
// the optimizer's moments and step, and returns the TrainState. Throws sm::Error naming the file
// and the tensor (nothing changed) on any problem.
TrainState checkpoint_load(const std::string& prefix, Module& module, Optimizer& optimizer);

// The named RNG state; fails naming the stream when the checkpoint lacks it.
Rng::State train_state_rng(const TrainState& state, const std::string& name);

}  // namespace sm
