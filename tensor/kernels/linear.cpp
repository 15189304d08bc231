// Dispatch of the fully connected kernels (contract: linear.h).
#include "tensor/kernels/linear.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
void check_linear(KernelId op, const Tensor& x, const Tensor& weight) {
  SM_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
           op << ": x " << x.str() << " must be (N, in) and weight " << weight.str() << " (out, in)");
}
}  // namespace

void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y) {
  constexpr KernelId op = KernelId::linear_forward;
  check_linear(op, x, weight);
  const int64_t n = x.size(0), in = x.size(1), out = weight.size(0);
  if (bias.defined()) check_numel(op, bias, out, "bias");
  check_numel(op, y, n * out, "y");
  if (kernel_device(op, {&x, &weight, &bias, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::linear_forward(n, in, out, f32_ptr(x), f32_ptr(weight), f32_ptr(bias), f32_ptr(y));
    return;
  }
  cpu::linear_forward(x, weight, bias, y);
}

void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor* dx, Tensor* dweight,
                     Tensor* dbias) {
  constexpr KernelId op = KernelId::linear_backward;
  check_linear(op, x, weight);
  const int64_t n = x.size(0), in = x.size(1), out = weight.size(0);
  check_numel(op, dy, n * out, "dy");
  if (dx) check_numel(op, *dx, x.numel(), "dx");
  if (dweight) check_numel(op, *dweight, weight.numel(), "dweight");
  if (dbias) check_numel(op, *dbias, out, "dbias");
  if (kernel_device(op, {&x, &weight, &dy, dx, dweight, dbias}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::linear_backward(n, in, out, f32_ptr(x), f32_ptr(weight), f32_ptr(dy), f32_ptr(dx), f32_ptr(dweight),
                            f32_ptr(dbias));
    return;
  }
  cpu::linear_backward(x, weight, dy, dx, dweight, dbias);
}

}  // namespace sm::kernels
