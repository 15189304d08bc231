// Where BatchNorm's batch statistics meet the other processes of a data-parallel run
// (SyncBatchNorm): layers/ cannot know the transport (train/dist/ sits above it, style.md
// rule 1), so the trainer hands one in through this interface while it trains. With none
// installed (the default) BatchNorm normalises over its own batch, as before.
#pragma once
#include <cstdint>

namespace sm {

class BatchStatsReducer {
 public:
  virtual ~BatchStatsReducer() = default;
  // values[i] ← Σ over every process of values[i], in a fixed order (bit-identical on every
  // process and every run). Called by every process in the same order with the same n.
  virtual void sum(double* values, int64_t n) = 0;
};

// The reducer BatchNorm uses in training mode, or null. Not owned; set it from the thread that
// runs forward and backward, and clear it before it dies (BatchStatsReducerScope does both).
BatchStatsReducer* batch_stats_reducer();
void batch_stats_reducer_set(BatchStatsReducer* reducer);

// Installs `reducer` for a scope and puts back the previous one.
class BatchStatsReducerScope {
 public:
  explicit BatchStatsReducerScope(BatchStatsReducer* reducer) : previous_(batch_stats_reducer()) {
    batch_stats_reducer_set(reducer);
  }
  ~BatchStatsReducerScope() { batch_stats_reducer_set(previous_); }
  BatchStatsReducerScope(const BatchStatsReducerScope&) = delete;
  BatchStatsReducerScope& operator=(const BatchStatsReducerScope&) = delete;

 private:
  BatchStatsReducer* previous_;
};

}  // namespace sm
