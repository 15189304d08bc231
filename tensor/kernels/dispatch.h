// The kernel layer's one dispatch point (issue 9; dlib's tensor_tools.cpp is the model). Every
// kernel of the engine is declared once, with its contract, in a header of this folder
// (conv2d.h, batchnorm.h, ...); its CPU implementation lives in cpu/ (namespace sm::cpu) and its
// CUDA twin in cuda/ (namespace sm::cuda, a plain C++ API on raw device pointers). The ten-line
// dispatchers in this folder's .cpp files check the tensors with kernel_device() — one device,
// one dtype, contiguous, and a kernel for that pair — and call one twin or the other.
//
// This header is the only place outside cuda/ and the build that asks whether CUDA was built:
// dispatchers write `if constexpr (kCudaBuilt) cuda::op(...)`, and in a CPU-only build the
// discarded statement needs no definition of cuda::op ([stmt.if]: odr-uses in a discarded
// statement do not require the entity to be defined), so there is nothing to stub.
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sm::kernels {

#ifdef SPINEMARK_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
#endif

// True when kernel `op` (a name of the table in dispatch.cpp, e.g. "conv2d_forward") has an
// implementation for tensors of `dtype` on `device` in this build. The op table of the tests
// asks this to report "no GPU version" instead of failing.
bool supports(const std::string& op, Device device, DType dtype);

// Every kernel name of the table, in table order.
std::vector<std::string> kernel_names();

// The checks every dispatcher makes before it calls a twin: the defined tensors among `tensors`
// all live on one device, have one dtype and are contiguous, and `op` supports that pair.
// Returns the device. Fails naming the op, the tensor and the usual cause.
Device kernel_device(const char* op, std::initializer_list<const Tensor*> tensors);

// Raw float32 pointer of a checked tensor (any device); null for an undefined or null one.
inline float* f32_ptr(const Tensor& t) { return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr; }
inline float* f32_ptr(const Tensor* t) { return t && t->defined() ? static_cast<float*>(t->raw_data()) : nullptr; }

}  // namespace sm::kernels

namespace sm::kernels {
// Fails unless a and b hold the same number of elements (a kernel's buffer sizes; the layers
// check the user-facing shapes with better words before any kernel runs).
void check_numel(const char* op, const Tensor& a, const Tensor& b);
// Fails unless t holds `n` elements.
void check_numel(const char* op, const Tensor& t, int64_t n, const char* what);
}  // namespace sm::kernels
