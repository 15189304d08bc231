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
