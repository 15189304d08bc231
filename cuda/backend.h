// The CUDA device backend (the seam of tensor/device_backend.h): device memory through a caching
// allocator, copies, fill, one stream with its cuBLAS and cuDNN handles, and the math-mode
// switches. Plain C++: no CUDA header here, so tensor/ (host compiler, Eigen) can include it.
#pragma once
#include <cstddef>
#include <string>

#include "tensor/device_backend.h"

struct CUstream_st;  // = cudaStream_t's pointee, declared as the CUDA headers do

namespace sm::cuda {

using Stream = CUstream_st*;  // a cudaStream_t; nullptr in an op's argument = the backend's stream

// The backend singleton (created on first use, never destroyed: tensors may outlive statics).
DeviceBackend& backend_get();

// True when a CUDA device is present and usable (driver, device count > 0). Never throws; on a
// machine without a driver or GPU it returns false.
bool device_present();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)" or "no CUDA device (<reason>)".
std::string device_describe();

// Makes GPU `index` current for this process (one GPU per rank); before any other CUDA use.
void device_index_set(int index);

// The backend's stream (created lazily on the first call). Every op in cuda/ runs on it unless
// given another.
Stream stream_get();

// ---- math-mode switches (process-wide; read at each call) ----------------------------------
// Strict mode: full float32 for convolution and GEMM (no TF32 tensor cores). Off by default:
// on Ampere and newer (compute capability >= 8.0) cuDNN and cuBLAS may then use TF32.
void strict_mode_set(bool on);
bool strict_mode();
// True when convolution and GEMM may use TF32 now: not strict, and the device is Ampere+.
bool tf32_active();
// Deterministic mode: fixed cuDNN algorithms among those cuDNN reports as deterministic, no
// float atomics anywhere (all our reductions are fixed-order in every mode; this switch matters
// for cuDNN's algorithm choice). On by default, as in the tests (style.md rule 25).
void deterministic_mode_set(bool on);
bool deterministic_mode();

// ---- memory --------------------------------------------------------------------------------
struct MemoryStats {
  size_t in_use = 0;        // bytes handed out and not yet returned
  size_t cached = 0;        // bytes held in the free lists
  size_t peak_in_use = 0;   // high-water mark of in_use
  size_t device_allocs = 0; // number of cudaMalloc calls so far
  size_t cache_hits = 0;    // allocations served from the free lists
};
MemoryStats memory_stats();
std::string memory_describe();  // one line per pool, printed at start by apps
void cache_release();            // returns every cached block to the driver

// Device scratch memory from the caching allocator, returned on destruction (RAII; move-only).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <class T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace sm::cuda
