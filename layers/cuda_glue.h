// Helpers shared by the CUDA twins of the layer ops (CUDA builds only): device checks, raw device
// pointers for the plain API of cuda/ops_cuda.h, gradient buffers and uploads. Plain C++ (no CUDA
// header), like cuda/ops_cuda.h itself; each layer file keeps its CUDA twin next to its CPU code.
#pragma once
#ifdef SPINEMARK_CUDA
#include "autograd/var.h"
#include "cuda/ops_cuda.h"
#include "layers/elementwise.h"

namespace sm {

// The device pointer of t, which must be a contiguous float32 CUDA tensor. Fails naming the op and
// the usual cause (a module or an input left on the other device).
inline float* cuda_f32_ptr(const char* op, const Tensor& t) {
  SM_CHECK(t.defined(), op << " (CUDA): undefined tensor");
  SM_CHECK(t.device() == Device::CUDA,
           op << " (CUDA): tensor " << t.str() << " is on the CPU while the op runs on the GPU; move the module with "
              << "to_device(Device::CUDA) and the inputs with .to(Device::CUDA)");
  SM_CHECK(t.dtype() == DType::F32 && t.is_contiguous(),
           op << " (CUDA): tensors must be contiguous float32, got " << t.str());
  return static_cast<float*>(t.raw_data());
}

// Same for an optional tensor: null when t is undefined.
inline float* cuda_f32_ptr_opt(const char* op, const Tensor& t) { return t.defined() ? cuda_f32_ptr(op, t) : nullptr; }

// The device pointer of v's value, or null when v is undefined (optional weight/bias).
inline float* cuda_value_ptr(const char* op, const Var& v) {
  return v.defined() ? cuda_f32_ptr(op, v.value()) : nullptr;
}

// v's gradient buffer on the device (zeros on first use, so a backward adds into it), or null
// when v is undefined or needs no gradient.
inline float* cuda_grad_ptr(const char* op, const Var& v) {
  if (!v.defined() || !v.requires_grad()) return nullptr;
  Var w = v;
  return cuda_f32_ptr(op, w.grad_buffer());
}

// A contiguous float32 CUDA tensor of size `shape` (uninitialised).
inline Tensor cuda_empty(const Shape& shape) { return Tensor::empty(shape, DType::F32, Device::CUDA); }

// t as a contiguous float32 tensor on the device: uploaded when it lives on the CPU (targets and
// masks are usually built there), unchanged when it is already a float32 CUDA tensor.
inline Tensor cuda_upload_f32(const char* op, const Tensor& t) {
  if (!t.defined()) return t;
  if (t.device() == Device::CUDA) {
    cuda_f32_ptr(op, t);  // checks dtype and layout
    return t;
  }
  return t.contiguous().to(DType::F32).to(Device::CUDA);
}

}  // namespace sm

#endif  // SPINEMARK_CUDA
