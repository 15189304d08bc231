// The seam between tensor/ and a device backend (cuda/). tensor/ calls these for memory and
// copies on a non-CPU device; ops dispatch on Tensor::device() to their CUDA twins. A CPU-only
// build gets a backend whose every call fails with a clear message.
#pragma once
#include <cstddef>
#include <string>

#include "tensor/tensor.h"

namespace sm {

struct DeviceBackend {
  virtual ~DeviceBackend() = default;
  virtual const char* name() const = 0;
  virtual bool available() const = 0;  // a usable GPU is present
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p, size_t bytes) = 0;
  // Copies bytes between any two devices (at least one side is not the CPU).
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  virtual void fill(Tensor& t, double value) = 0;
  virtual void synchronize() = 0;

  // What the device is, in words ("NVIDIA H100 80GB HBM3 (sm_90, ...)" or why there is none).
  virtual std::string describe() const { return "no device backend in this build"; }
  // Math modes of convolution and GEMM (process-wide, read at each call). Strict: full float32,
  // no TF32 tensor cores; deterministic: fixed algorithms among those the library reports as
  // deterministic. The CUDA backend defaults to TF32 allowed, deterministic on.
  virtual void strict_mode_set(bool /*on*/) {}
  virtual bool strict_mode() const { return true; }
  virtual bool tf32_active() const { return false; }  // TF32 may be used now
  virtual void deterministic_mode_set(bool /*on*/) {}
  virtual bool deterministic_mode() const { return true; }
  // High-water mark of device memory handed out so far, in bytes.
  virtual size_t memory_peak_bytes() const { return 0; }
  // Device memory per pool, one line each (printed at start by apps and tests).
  virtual std::string memory_describe() const { return "no device memory"; }
  // GPUs this process sees (0 without a backend or a driver).
  virtual int device_count() const { return 0; }
  // Makes GPU `index` (0 .. device_count() − 1) this process's device: one GPU per rank of a
  // data-parallel run. Must come before the first allocation or launch (the stream and the
  // library handles are bound to the device current when they are made); fails otherwise.
  virtual void device_index_set(int index);
  // The stream every op runs on (a cudaStream_t), for libraries that queue work beside ours
  // (NCCL's all-reduce); nullptr without a device.
  virtual void* stream_handle() { return nullptr; }
};

DeviceBackend& device_backend();
// True when a GPU can be used: CUDA build, a device present, and not forced off.
bool cuda_available();
// Run-time switch: forces the CPU even in a CUDA build (e.g. `--device cpu`).
void cuda_force_off(bool off);
// A command's --device value: "cpu" (CUDA forced off) or "cuda" (fails, naming `who`, when the
// build has no CUDA or no usable GPU is present).
Device device_select(const std::string& name, const std::string& who);

}  // namespace sm
