// fn(0..n−1) on the OpenMP threads, for work that may throw (file I/O, decoding): an exception
// may not leave an OpenMP region (the process would terminate without the usual one-line error),
// so each iteration's error is caught and the first one is rethrown on the calling thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>

namespace sm {

// Runs fn(i) for i in 0..n−1, `chunk` consecutive iterations at a time per thread (dynamic
// schedule: iterations of uneven cost). After the first error the iterations not yet started
// are skipped; when the loop is over that first error is rethrown (the others are dropped).
inline void parallel_for(int64_t n, const std::function<void(int64_t)>& fn, int chunk = 8) {
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, chunk)
  for (int64_t i = 0; i < n; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      fn(i);
    } catch (...) {
#pragma omp critical(sm_parallel_for_error)
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace sm
