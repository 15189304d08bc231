// Worker-thread batch loader (see loader.h).
#include "train/data/loader.h"

#include <algorithm>
#include <cstring>

#include "tensor/rng.h"

namespace sm {

Batch batch_to_device(const Batch& b, Device device) {
  Batch out = b;  // shares the tensors; those not on `device` are replaced by copies below
  out.images = b.images.to(device);
  out.targets = b.targets.to(device);
  out.mask = b.mask.to(device);
  return out;
}

Loader::Loader(const LoaderConfig& config, SampleFn make) : cfg_(config), make_(std::move(make)) {
  SM_CHECK(cfg_.size > 0, "loader: the dataset is empty");
  SM_CHECK(cfg_.batch >= 1 && cfg_.threads >= 1 && cfg_.prefetch >= 1, "loader: batch, threads and prefetch must be >= 1");
  SM_CHECK(cfg_.channels > 0 && cfg_.height > 0 && cfg_.width > 0 && cfg_.landmarks > 0, "loader: sample shape not set");
  SM_CHECK(!cfg_.drop_last || cfg_.size >= uint64_t(cfg_.batch),
           "loader: " << cfg_.size << " samples cannot fill one batch of " << cfg_.batch);
  SM_CHECK(cfg_.shards >= 1 && cfg_.shard >= 0 && cfg_.shard < cfg_.shards,
           "loader: shard " << cfg_.shard << " of " << cfg_.shards << " does not exist");
  SM_CHECK(cfg_.shards <= cfg_.batch && (cfg_.drop_last || cfg_.shards == 1 || cfg_.size % uint64_t(cfg_.batch) == 0 ||
                                         cfg_.size % uint64_t(cfg_.batch) >= uint64_t(cfg_.shards)),
           "loader: a batch of " << cfg_.batch << " (or the epoch's last one) cannot be shared by " << cfg_.shards
                                 << " processes (give each at least one sample: a larger batch, or fewer processes)");
}

Loader::~Loader() { workers_stop(); }

uint64_t Loader::batches_per_epoch() const {
  const uint64_t b = uint64_t(cfg_.batch);
  return cfg_.drop_last ? cfg_.size / b : (cfg_.size + b - 1) / b;
}

// Fisher–Yates with our generator: the same permutation on every machine.
std::vector<uint64_t> Loader::epoch_order(uint64_t epoch) const {
  std::vector<uint64_t> order(cfg_.size);
  for (uint64_t i = 0; i < cfg_.size; ++i) order[i] = i;
  if (cfg_.shuffle) {
    Rng rng = Rng(cfg_.seed).derive("shuffle", epoch);
    for (uint64_t i = cfg_.size; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  }
  return order;
}

void Loader::workers_stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  stopping_ = false;
}

void Loader::epoch_start(uint64_t epoch, uint64_t first) {
  workers_stop();
  SM_CHECK(first <= batches_per_epoch(), "loader: batch " << first << " is past the end of the epoch");
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_to_build_ = next_to_give_ = first;
  end_ = batches_per_epoch();
  ready_.clear();
  error_ = nullptr;
  for (int i = 0; i < cfg_.threads; ++i) threads_.emplace_back(&Loader::worker_loop, this, i);
}

Batch Loader::batch_build(uint64_t number) const {
  const uint64_t begin = number * uint64_t(cfg_.batch);
  const uint64_t all = std::min<uint64_t>(uint64_t(cfg_.batch), cfg_.size - begin);
  // This process's slice of the batch's rows (the whole batch when not sharded).
  const uint64_t lo = all * uint64_t(cfg_.shard) / uint64_t(cfg_.shards);
  const uint64_t n = all * uint64_t(cfg_.shard + 1) / uint64_t(cfg_.shards) - lo;
  const int64_t chw = int64_t(cfg_.channels) * cfg_.height * cfg_.width, l = cfg_.landmarks;
  Batch b;
  b.epoch = epoch_;
  b.number = number;
  b.rows_total = int64_t(all);
  b.images = Tensor::empty({int64_t(n), cfg_.channels, cfg_.height, cfg_.width});
  b.targets = Tensor::empty({int64_t(n), l, 2});
  b.mask = Tensor::empty({int64_t(n), l});
  for (uint64_t k = 0; k < n; ++k) {
    const uint64_t index = order_[begin + lo + k];
    Sample s = make_(epoch_, index);
    SM_CHECK(int64_t(s.image.size()) == chw && int64_t(s.targets.size()) == 2 * l && int64_t(s.visible.size()) == l,
             "loader: sample " << index << " has the wrong size (image " << s.image.size() << ", expected " << chw << ")");
    std::memcpy(b.images.f32() + int64_t(k) * chw, s.image.data(), size_t(chw) * sizeof(float));
    std::memcpy(b.targets.f32() + int64_t(k) * 2 * l, s.targets.data(), size_t(2 * l) * sizeof(float));
    std::memcpy(b.mask.f32() + int64_t(k) * l, s.visible.data(), size_t(l) * sizeof(float));
    b.indices.push_back(index);
  }
  return b;
}

void Loader::worker_loop(int) {
  for (;;) {
    uint64_t number;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Claim the next batch once it is within the prefetch window.
      cv_.wait(lock, [&] { return stopping_ || error_ || (next_to_build_ < end_ && next_to_build_ < next_to_give_ + uint64_t(cfg_.prefetch)); });
      if (stopping_ || error_) return;
      number = next_to_build_++;
    }
    try {
      Batch b = batch_build(number);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(number, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  SM_CHECK(!order_.empty(), "loader: call epoch_start() first");
  std::unique_lock<std::mutex> lock(mu_);
  if (next_to_give_ >= end_) return false;
  cv_.wait(lock, [&] { return error_ || ready_.count(next_to_give_); });
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_to_give_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_to_give_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace sm
