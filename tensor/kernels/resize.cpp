// Dispatch of the bilinear resize kernels (contract: resize.h).
#include "tensor/kernels/resize.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
void check_resize(KernelId op, const Tensor& small_or_in, const Tensor& other) {
  SM_CHECK(small_or_in.dim() == 4 && other.dim() == 4 && small_or_in.size(0) == other.size(0) &&
               small_or_in.size(1) == other.size(1) && small_or_in.numel() > 0 && other.numel() > 0,
           op << ": " << small_or_in.str() << " and " << other.str() << " must be (N, C, ., .) with the same N, C");
}
}  // namespace

void resize_bilinear_forward(const Tensor& x, Tensor& y) {
  constexpr KernelId op = KernelId::resize_bilinear_forward;
  check_resize(op, x, y);
  if (kernel_device(op, {&x, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::resize_bilinear_forward(x.size(0), x.size(1), x.size(2), x.size(3), y.size(2), y.size(3), f32_ptr(x),
                                    f32_ptr(y));
    return;
  }
  cpu::resize_bilinear_forward(x, y);
}

void resize_bilinear_backward(const Tensor& dy, Tensor& dx) {
  constexpr KernelId op = KernelId::resize_bilinear_backward;
  check_resize(op, dx, dy);
  if (kernel_device(op, {&dy, &dx}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::resize_bilinear_backward(dx.size(0), dx.size(1), dx.size(2), dx.size(3), dy.size(2), dy.size(3),
                                     f32_ptr(dy), f32_ptr(dx));
    return;
  }
  cpu::resize_bilinear_backward(dy, dx);
}

}  // namespace sm::kernels
