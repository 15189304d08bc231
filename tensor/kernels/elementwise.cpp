// Dispatch of the elementwise kernels (contract: elementwise.h).
#include "tensor/kernels/elementwise.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

void relu_forward(const Tensor& x, Tensor& y) {
  check_numel(KernelId::relu_forward, x, y);
  if (kernel_device(KernelId::relu_forward, {&x, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::relu_forward(x.numel(), f32_ptr(x), f32_ptr(y));
    return;
  }
  cpu::relu_forward(x, y);
}

void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_numel(KernelId::relu_backward, y, dy), check_numel(KernelId::relu_backward, y, dx);
  if (kernel_device(KernelId::relu_backward, {&y, &dy, &dx}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::relu_backward(y.numel(), f32_ptr(y), f32_ptr(dy), f32_ptr(dx));
    return;
  }
  cpu::relu_backward(y, dy, dx);
}

void add_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_numel(KernelId::add_forward, a, b), check_numel(KernelId::add_forward, a, y);
  if (kernel_device(KernelId::add_forward, {&a, &b, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::add_forward(a.numel(), f32_ptr(a), f32_ptr(b), f32_ptr(y));
    return;
  }
  cpu::add_forward(a, b, y);
}

void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_numel(KernelId::add_relu_forward, a, b), check_numel(KernelId::add_relu_forward, a, y);
  if (kernel_device(KernelId::add_relu_forward, {&a, &b, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::add_relu_forward(a.numel(), f32_ptr(a), f32_ptr(b), f32_ptr(y));
    return;
  }
  cpu::add_relu_forward(a, b, y);
}

void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor* da, Tensor* db) {
  check_numel(KernelId::add_relu_backward, y, dy);
  for (Tensor* d : {da, db})
    if (d) check_numel(KernelId::add_relu_backward, y, *d);
  if (kernel_device(KernelId::add_relu_backward, {&y, &dy, da, db}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::add_relu_backward(y.numel(), f32_ptr(y), f32_ptr(dy), f32_ptr(da), f32_ptr(db));
    return;
  }
  cpu::add_relu_backward(y, dy, da, db);
}

void axpy(double alpha, const Tensor& x, Tensor& y) {
  check_numel(KernelId::axpy, x, y);
  if (kernel_device(KernelId::axpy, {&x, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::axpy(x.numel(), float(alpha), f32_ptr(x), f32_ptr(y));
    return;
  }
  cpu::axpy(alpha, x, y);
}

void scale(double alpha, Tensor& x) {
  if (kernel_device(KernelId::scale, {&x}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::scale(x.numel(), float(alpha), f32_ptr(x));
    return;
  }
  cpu::scale(alpha, x);
}

double sum(const Tensor& x) {
  if (kernel_device(KernelId::sum, {&x}) == Device::CUDA) {
    if constexpr (kCudaBuilt) return cuda::sum(x.numel(), f32_ptr(x));
  }
  return cpu::sum(x);
}

double sum_squares(const Tensor& x) {
  if (kernel_device(KernelId::sum_squares, {&x}) == Device::CUDA) {
    if constexpr (kCudaBuilt) return cuda::sum_squares(x.numel(), f32_ptr(x));
  }
  return cpu::sum_squares(x);
}

}  // namespace sm::kernels
