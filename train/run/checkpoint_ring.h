// A stage folder's checkpoint ring (the way dlib's dnn_trainer keeps its sync files apart from
// the step): pairs ckpt-<step>.{weights,state}.safetensors, the newest two kept, and
// checkpoint.json naming the latest complete pair. The pointer is replaced only after both files
// of a pair are written, so a kill at any moment leaves a loadable checkpoint.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "layers/module.h"
#include "train/optim/optimizer.h"
#include "train/run/checkpoint.h"

namespace sm {

class CheckpointRing {
 public:
  explicit CheckpointRing(std::string dir, size_t keep = 2) : dir_(std::move(dir)), keep_(keep) {}

  // The prefix of the latest complete pair ("" when there is none).
  std::string latest() const;
  // The prefixes to try when resuming, in order: latest() first, then the ring's other pairs
  // (both files present), newest first, so that a damaged latest pair falls back to an intact
  // previous one.
  std::vector<std::string> resume_candidates() const;
  // Writes the pair of state.step (each file atomically), then the pointer, then removes all but
  // the newest `keep` pairs.
  void save(const Module& module, const Optimizer& optimizer, const TrainState& state) const;
  // A fresh start: an earlier attempt's checkpoints, pointer, best weights and done.json are
  // removed, so that nothing of it can be taken for the new run's.
  void clear() const;

 private:
  void prune() const;
  std::string dir_;
  size_t keep_;
};

}  // namespace sm
