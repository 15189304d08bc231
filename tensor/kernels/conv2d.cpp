// Dispatch of the convolution kernels (contract: conv2d.h).
#include "tensor/kernels/conv2d.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/context.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
void check_geometry(KernelId op, const Conv2dGeometry& g, const Tensor& x, const Tensor& weight) {
  SM_CHECK(g.n >= 0 && g.c > 0 && g.k > 0 && g.kh > 0 && g.kw > 0 && g.stride_h > 0 && g.stride_w > 0 && g.pad_h >= 0 &&
               g.pad_w >= 0 && g.dil_h > 0 && g.dil_w > 0 && g.out_h() > 0 && g.out_w() > 0,
           op << ": invalid geometry (sizes, strides and dilations must be positive, padding >= 0)");
  check_numel(op, x, g.n * g.c * g.h * g.w, "x");
  check_numel(op, weight, g.k * g.c * g.kh * g.kw, "weight");
}

[[maybe_unused]] cuda::ConvShape cuda_shape(const Conv2dGeometry& g) {
  cuda::ConvShape cs;
  cs.n = g.n, cs.c = g.c, cs.h = g.h, cs.w = g.w, cs.k = g.k, cs.kh = g.kh, cs.kw = g.kw;
  cs.stride_h = g.stride_h, cs.stride_w = g.stride_w, cs.pad_h = g.pad_h, cs.pad_w = g.pad_w;
  cs.dil_h = g.dil_h, cs.dil_w = g.dil_w;
  return cs;
}
}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                    const Conv2dForwardOptions& options) {
  constexpr KernelId op = KernelId::conv2d_forward;
  check_geometry(op, g, x, weight);
  check_numel(op, y, g.n * g.k * g.out_h() * g.out_w(), "y");
  if (bias.defined()) check_numel(op, bias, g.k, "bias");
  const Device d = kernel_device(op, {&x, &weight, &bias, &y});
  exec_context().counters.conv2d_forward_macs += g.macs();
  if (d == Device::CUDA) {
    if constexpr (kCudaBuilt) {
      cuda::conv2d_forward(cuda_shape(g), f32_ptr(x), f32_ptr(weight), f32_ptr(bias), f32_ptr(y));
      if (options.relu) cuda::relu_forward(y.numel(), f32_ptr(y), f32_ptr(y));
    }
    return;
  }
  cpu::conv2d_forward(g, x, weight, bias, y, options.relu, options.cache ? &options.cache->cpu : nullptr);
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor* dx,
                     Tensor* dweight, Tensor* dbias) {
  constexpr KernelId op = KernelId::conv2d_backward;
  check_geometry(op, g, x, weight);
  check_numel(op, dy, g.n * g.k * g.out_h() * g.out_w(), "dy");
  if (dx) check_numel(op, *dx, x.numel(), "dx");
  if (dweight) check_numel(op, *dweight, weight.numel(), "dweight");
  if (dbias) check_numel(op, *dbias, g.k, "dbias");
  if (kernel_device(op, {&x, &weight, &dy, dx, dweight, dbias}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::conv2d_backward(cuda_shape(g), f32_ptr(x), f32_ptr(weight), f32_ptr(dy), f32_ptr(dx), f32_ptr(dweight),
                            f32_ptr(dbias));
    return;
  }
  cpu::conv2d_backward(g, x, weight, dy, dx, dweight, dbias);
}

}  // namespace sm::kernels
