// The data loader: batches of tensors built by worker threads ahead of the training loop.
// Every sample is a pure function of (seed, epoch, index) and the epoch's order is a
// permutation drawn from the "shuffle" stream of the seed, so for a given seed the batches are
// bit-identical whatever the number of threads; threads only change when they are ready.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "tensor/tensor.h"

namespace sm {

// One training example, already at the network's input size.
struct Sample {
  std::vector<float> image;     // (C, H, W)
  std::vector<float> targets;   // (L, 2) normalised (x, y) in (-1, 1)
  std::vector<float> visible;   // (L,) 1 or 0
};

struct Batch {
  // N: the rows of this process's slice (the whole batch without sharding).
  Tensor images;   // (N, C, H, W)
  Tensor targets;  // (N, L, 2)
  Tensor mask;     // (N, L)
  std::vector<uint64_t> indices;  // dataset index of each row
  uint64_t epoch = 0, number = 0;  // which batch of which epoch
  int64_t rows_total = 0;          // the whole batch's rows, over every shard
};

// The batch's tensors on `device` (a copy each; the same batch when it is already there).
// Indices and counters are kept. On a GPU run this is the step's one upload.
Batch batch_to_device(const Batch& b, Device device);

struct LoaderConfig {
  uint64_t size = 0;       // samples in the dataset
  int batch = 8;
  int channels = 1, height = 0, width = 0, landmarks = 0;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;   // training: only full batches
  int threads = 2;         // worker threads (>= 1)
  int prefetch = 4;        // batches built ahead of the consumer
  // Data-parallel runs (train/dist/): this process builds only its fixed slice of every batch of
  // n rows, rows [n·shard/shards, n·(shard+1)/shards); which samples form a batch, and in what
  // order, stays that of one process. shards <= batch, so that no slice is empty.
  int shard = 0, shards = 1;
};

// make(epoch, index) -> the sample; must be thread-safe and depend on nothing else.
using SampleFn = std::function<Sample(uint64_t epoch, uint64_t index)>;

class Loader {
 public:
  Loader(const LoaderConfig& config, SampleFn make);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) at batch `first` of `epoch`: a resumed run continues exactly there.
  void epoch_start(uint64_t epoch, uint64_t first = 0);
  // Next batch of the current epoch; false at the epoch's end. Rethrows a worker's error.
  bool next(Batch& out);
  uint64_t batches_per_epoch() const;
  std::vector<uint64_t> epoch_order(uint64_t epoch) const;  // the permutation used

 private:
  void workers_stop();
  void worker_loop(int id);
  Batch batch_build(uint64_t number) const;

  LoaderConfig cfg_;
  SampleFn make_;
  std::vector<uint64_t> order_;
  uint64_t epoch_ = 0, next_to_build_ = 0, next_to_give_ = 0, end_ = 0;
  std::map<uint64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
};

}  // namespace sm
