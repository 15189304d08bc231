// BatchNorm's batch statistics summed over the ranks of a data-parallel run (SyncBatchNorm): the
// layers/ interface (batch_stats_reducer.h) served by a Communicator.
#pragma once
#include "layers/batch_stats_reducer.h"
#include "train/dist/communicator.h"

namespace sm {

class BatchStatsOverRanks final : public BatchStatsReducer {
 public:
  explicit BatchStatsOverRanks(Communicator& comm) : comm_(comm) {}
  void sum(double* values, int64_t n) override { comm_.sum(values, n); }

 private:
  Communicator& comm_;
};

}  // namespace sm
