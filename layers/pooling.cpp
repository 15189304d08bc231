// MaxPool2d and global average pooling layers (see pooling.h): shape checks, the graph node and
// one kernel call each way (tensor/kernels/pooling.h).
#include "layers/pooling.h"

#include "layers/conv2d.h"
#include "tensor/kernels/pooling.h"

namespace sm {

Var max_pool2d(const Var& x, const MaxPool2dParams& p) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "max_pool2d: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
  kernels::Pool2dGeometry g;
  g.n = xv.size(0), g.c = xv.size(1), g.h = xv.size(2), g.w = xv.size(3);
  g.kernel = p.kernel, g.stride = p.stride > 0 ? p.stride : p.kernel, g.pad = p.padding;
  SM_CHECK(g.kernel > 0 && g.pad >= 0 && 2 * g.pad <= g.kernel,
           "max_pool2d: kernel " << g.kernel << " padding " << g.pad << ": padding must be at most half the kernel");
  SM_CHECK(g.out_h() > 0 && g.out_w() > 0,
           "max_pool2d: input " << shape_str(xv.shape()) << " too small for kernel " << g.kernel);
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty({g.n, g.c, g.out_h(), g.out_w()}, xc.dtype(), xc.device());  // (N, C, Ho, Wo)
  const bool backward_follows = grad_mode_enabled() && x.requires_grad();
  kernels::MaxPoolSaved saved = kernels::max_pool2d_forward(g, xc, y, backward_follows);
  // Backward: the gradient of each output goes to the input that was its maximum.
  return var_make_result(y, {x}, "max_pool2d", [x, g, saved](const Tensor& gy) {
    kernels::max_pool2d_backward(g, saved, gy.contiguous(), x.grad_buffer());
  });
}

Var global_avg_pool(const Var& x) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "global_avg_pool: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty({xc.size(0), xc.size(1)}, xc.dtype(), xc.device());  // (N, C)
  kernels::global_avg_pool_forward(xc, y);
  // dx[n, c, i, j] += g[n, c] / (H W)
  return var_make_result(y, {x}, "global_avg_pool", [x](const Tensor& gy) {
    kernels::global_avg_pool_backward(gy.contiguous(), x.grad_buffer());
  });
}

}  // namespace sm
