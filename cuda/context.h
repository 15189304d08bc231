// Internal to cuda/: the lazily created stream, cuBLAS and cuDNN handles, and the caching
// allocator behind the backend. Includes the CUDA headers (via cuda_check.h).
#pragma once
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/backend.h"
#include "cuda/cuda_check.h"

namespace sm::cuda {

// The stream an op runs on: its argument, or the backend's stream when that is nullptr.
inline cudaStream_t stream_resolve(Stream s) { return s ? s : stream_get(); }

// Handles bound to stream `s` (set on every call: cheap). cublas_get also sets the math mode
// from the switches (TF32 tensor ops unless strict).
cublasHandle_t cublas_get(cudaStream_t s);
cudnnHandle_t cudnn_get(cudaStream_t s);

// Compute capability major of the current device (0 when none).
int device_cc_major();

// Size-bucketed caching allocator (one device, one stream). Blocks are rounded up (512 B below
// 1 MiB, 2 MiB above) and kept on a free list per rounded size; freeing returns a block to its
// list. On out-of-memory: release the cache, retry once, then fail with the bytes requested and
// in use. The stream-ordered reuse is safe because every op runs on the one backend stream.
class CachingAllocator {
 public:
  CachingAllocator() = default;
  ~CachingAllocator();  // returns the cached blocks (live blocks belong to their owners)
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* alloc(size_t bytes);
  void free(void* p);
  void cache_release();
  MemoryStats stats();
  static size_t bucket_size(size_t bytes);

 private:
  void cache_release_locked();
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> cached blocks
  std::unordered_map<void*, size_t> live_;               // block -> bucket size
  MemoryStats st_;
};

CachingAllocator& allocator_get();

}  // namespace sm::cuda
