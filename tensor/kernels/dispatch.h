// The kernel layer's one dispatch point (issue 9; dlib's tensor_tools.cpp is the model). Every
// kernel of the engine is declared once, with its contract, in a header of this folder
// (conv2d.h, batchnorm.h, ...); its CPU implementation lives in cpu/ (namespace sm::cpu) and its
// CUDA twin in cuda/ (namespace sm::cuda, a plain C++ API on raw device pointers), and it has one
// line in kernel_list.h, which gives its KernelId. The ten-line dispatchers in this folder's .cpp
// files check the tensors with kernel_device(KernelId::op, ...) — one device, one dtype,
// contiguous, and a kernel for that pair — and call one twin or the other.
//
// This header is the only place outside cuda/ and the build that asks whether CUDA was built:
// dispatchers write `if constexpr (kCudaBuilt) cuda::op(...)`, and in a CPU-only build the
// discarded statement needs no definition of cuda::op ([stmt.if]: odr-uses in a discarded
// statement do not require the entity to be defined), so there is nothing to stub.
#pragma once
#include <initializer_list>
#include <iosfwd>

#include "tensor/kernels/kernel_list.h"
#include "tensor/tensor.h"

namespace sm::kernels {

#ifdef SPINEMARK_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
#endif

// True when kernel `op` (kernel_list.h) has an implementation for tensors of `dtype` on `device`
// in this build. The op table of the tests asks this to report "no GPU version" instead of
// failing; the optimizers ask it to name the parameter in their message.
bool supports(KernelId op, Device device, DType dtype);

// The kernel's name as written in kernel_list.h (e.g. "conv2d_forward"), for messages and
// reports; streaming a KernelId writes it.
const char* kernel_name(KernelId op);
std::ostream& operator<<(std::ostream& os, KernelId op);

// The checks every dispatcher makes before it calls a twin: the defined tensors among `tensors`
// all live on one device, have one dtype and are contiguous, and `op` supports that pair.
// Returns the device. Fails naming the op, the tensor and the usual cause.
Device kernel_device(KernelId op, std::initializer_list<const Tensor*> tensors);

// Raw float32 pointer of a checked tensor (any device); null for an undefined or null one.
inline float* f32_ptr(const Tensor& t) { return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr; }
inline float* f32_ptr(const Tensor* t) { return t && t->defined() ? static_cast<float*>(t->raw_data()) : nullptr; }

}  // namespace sm::kernels

namespace sm::kernels {
// Fails unless a and b hold the same number of elements (a kernel's buffer sizes; the layers
// check the user-facing shapes with better words before any kernel runs).
void check_numel(KernelId op, const Tensor& a, const Tensor& b);
// Fails unless t holds `n` elements.
void check_numel(KernelId op, const Tensor& t, int64_t n, const char* what);
}  // namespace sm::kernels
