// Conv2d layer (see conv2d.h): shape checks, the graph node, and one kernel call each way
// (tensor/kernels/conv2d.h; CPU im2col + packed GEMM or Winograd, CUDA cuDNN).
#include "layers/conv2d.h"

#include <cmath>
#include <vector>

#include "tensor/kernels/conv2d.h"

namespace sm {

kernels::Conv2dGeometry conv2d_geometry(const Tensor& xv, const Tensor& wv, const Tensor& bias, const Conv2dParams& p) {
  SM_CHECK(xv.dim() == 4 && wv.dim() == 4,
           "conv2d: x " << shape_str(xv.shape()) << " must be (N, Cin, H, W) and weight " << shape_str(wv.shape())
                        << " (Cout, Cin, kh, kw)");
  SM_CHECK(xv.size(1) == wv.size(1), "conv2d: x " << shape_str(xv.shape()) << " has " << xv.size(1)
                                                  << " channels, weight " << shape_str(wv.shape()) << " expects "
                                                  << wv.size(1));
  SM_CHECK(xv.dtype() == wv.dtype(), "conv2d: x is " << dtype_name(xv.dtype()) << ", weight " << dtype_name(wv.dtype()));
  SM_CHECK(p.stride_h > 0 && p.stride_w > 0 && p.dilation_h > 0 && p.dilation_w > 0 && p.pad_h >= 0 && p.pad_w >= 0,
           "conv2d: stride and dilation must be >= 1 and padding >= 0");
  kernels::Conv2dGeometry g;
  g.n = xv.size(0), g.c = xv.size(1), g.h = xv.size(2), g.w = xv.size(3);
  g.k = wv.size(0), g.kh = wv.size(2), g.kw = wv.size(3);
  g.stride_h = p.stride_h, g.stride_w = p.stride_w, g.pad_h = p.pad_h, g.pad_w = p.pad_w;
  g.dil_h = p.dilation_h, g.dil_w = p.dilation_w;
  SM_CHECK(g.out_h() > 0 && g.out_w() > 0, "conv2d: input " << shape_str(xv.shape()) << " is too small for kernel "
                                                             << shape_str(wv.shape()) << " with this padding/dilation");
  if (bias.defined())
    SM_CHECK(bias.dim() == 1 && bias.size(0) == g.k && bias.dtype() == xv.dtype(),
             "conv2d: bias " << shape_str(bias.shape()) << " must be (" << g.k << ") of x's dtype");
  return g;
}

Var conv2d(const Var& x, const Var& weight, const Var& bias, const Conv2dParams& p) {
  const Tensor& xv = x.value();
  const Tensor& wv = weight.value();
  const kernels::Conv2dGeometry g = conv2d_geometry(xv, wv, bias.defined() ? bias.value() : Tensor(), p);
  Tensor xc = xv.contiguous(), wc = wv.contiguous();
  Tensor bc = bias.defined() ? bias.value().contiguous() : Tensor();
  Tensor y = Tensor::empty({g.n, g.k, g.out_h(), g.out_w()}, xv.dtype(), xv.device());  // (N, Cout, Ho, Wo)
  kernels::conv2d_forward(g, xc, wc, bc, y);

  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  // Backward keeps x and the weight (the graph holds them anyway); im2col is recomputed.
  return var_make_result(y, inputs, "conv2d", [x, weight, bias, g, xc, wc](const Tensor& gy) {
    kernels::conv2d_backward(g, xc, wc, gy.contiguous(), grad_target(x), grad_target(weight), grad_target(bias));
  });
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Rng& rng, const Conv2dParams& p, bool bias)
    : Conv2d(in_channels, out_channels, kernel, kernel, rng, p, bias) {}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Rng& rng,
               const Conv2dParams& p, bool bias)
    : in_(in_channels), out_(out_channels), p_(p) {
  SM_CHECK(in_channels > 0 && out_channels > 0 && kernel_h > 0 && kernel_w > 0,
           "Conv2d: channels and kernel size must be positive");
  Tensor w = Tensor::empty({out_channels, in_channels, kernel_h, kernel_w});  // (Cout, Cin, kh, kw)
  tensor_fill_normal(w, rng, 0.0, std::sqrt(2.0 / double(out_channels * kernel_h * kernel_w)));
  weight_ = parameter_add("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out_channels});  // (Cout)
    const double bound = 1.0 / std::sqrt(double(in_channels * kernel_h * kernel_w));
    tensor_fill_uniform(b, rng, -bound, bound);
    bias_ = parameter_add("bias", b);
  }
}

Var Conv2d::forward(const Var& x) { return conv2d(x, weight_, bias_, p_); }

}  // namespace sm
