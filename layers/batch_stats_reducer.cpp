// The installed batch-statistics reducer (see batch_stats_reducer.h): one per thread, so that a
// test may run two "ranks" as two threads of one process.
#include "layers/batch_stats_reducer.h"

namespace sm {

namespace {
thread_local BatchStatsReducer* installed = nullptr;
}  // namespace

BatchStatsReducer* batch_stats_reducer() { return installed; }
void batch_stats_reducer_set(BatchStatsReducer* reducer) { installed = reducer; }

}  // namespace sm
