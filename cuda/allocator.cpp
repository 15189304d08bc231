// The caching allocator of context.h (PyTorch's CUDACachingAllocator idea, much simplified:
// exact-size buckets, one stream). Host code only.
#include <sstream>

#include "cuda/context.h"

namespace sm::cuda {

namespace {
constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB
std::string mib(size_t b) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  os << double(b) / double(1 << 20) << " MiB";
  return os.str();
}
}  // namespace

size_t CachingAllocator::bucket_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t r = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + r - 1) / r * r;
}

CachingAllocator::~CachingAllocator() {
  // No throwing from a destructor: at process exit the driver may already be shutting down.
  for (auto& kv : free_)
    for (void* p : kv.second) (void)cudaFree(p);
}

void* CachingAllocator::alloc(size_t bytes) {
  const size_t b = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find(b);
  if (it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    st_.cached -= b;
    st_.cache_hits++;
    live_[p] = b;
    st_.in_use += b;
    if (st_.in_use > st_.peak_in_use) st_.peak_in_use = st_.in_use;
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, b);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the error, free the cache, retry once
    cache_release_locked();
    e = cudaMalloc(&p, b);
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    SM_FAIL("CUDA out of memory: requested " << bytes << " bytes (" << mib(b) << " rounded), " << mib(st_.in_use)
                                             << " in use by spinemark, " << mib(free_b) << " free of " << mib(total_b)
                                             << " on the device (" << cudaGetErrorName(e)
                                             << "); use a smaller batch or free other GPU processes");
  }
  st_.device_allocs++;
  live_[p] = b;
  st_.in_use += b;
  if (st_.in_use > st_.peak_in_use) st_.peak_in_use = st_.in_use;
  return p;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  SM_CHECK(it != live_.end(), "CUDA allocator: freeing a pointer it did not hand out (" << p << ")");
  const size_t b = it->second;
  live_.erase(it);
  st_.in_use -= b;
  free_[b].push_back(p);
  st_.cached += b;
}

void CachingAllocator::cache_release_locked() {
  if (st_.cached == 0) return;
  // cudaFree synchronises the device, so no queued kernel still uses these blocks.
  for (auto& kv : free_) {
    for (void* p : kv.second) SM_CUDA_CHECK(cudaFree(p));
    kv.second.clear();
  }
  st_.cached = 0;
}

void CachingAllocator::cache_release() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_release_locked();
}

MemoryStats CachingAllocator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return st_;
}

std::string memory_describe() {
  const MemoryStats s = allocator_get().stats();
  std::ostringstream os;
  os << "cuda pool: " << mib(s.in_use) << " in use, " << mib(s.cached) << " cached, peak " << mib(s.peak_in_use)
     << ", " << s.device_allocs << " cudaMalloc calls, " << s.cache_hits << " cache hits";
  return os.str();
}

MemoryStats memory_stats() { return allocator_get().stats(); }
void cache_release() { allocator_get().cache_release(); }

DeviceBuffer::DeviceBuffer(size_t bytes) : ptr_(bytes ? allocator_get().alloc(bytes) : nullptr), bytes_(bytes) {}
DeviceBuffer::~DeviceBuffer() {
  if (ptr_) allocator_get().free(ptr_);
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) allocator_get().free(ptr_);
    ptr_ = o.ptr_, bytes_ = o.bytes_;
    o.ptr_ = nullptr, o.bytes_ = 0;
  }
  return *this;
}

}  // namespace sm::cuda
