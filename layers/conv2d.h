// 2-D convolution (cross-correlation, like torch.nn.Conv2d, groups = 1). The kernels are in
// tensor/kernels/conv2d.h (CPU: im2col + our packed GEMM, or Winograd for 3×3 stride 1, with
// im2col + Eigen as the float64 reference; CUDA: cuDNN); their multiply-accumulate count and
// threading live in the execution context (tensor/kernels/context.h). Output sizes:
// kernels::conv_out_size (tensor/kernels/conv_geometry.h).
#pragma once
#include <cstdint>

#include "layers/module.h"
#include "tensor/kernels/conv2d.h"
#include "tensor/rng.h"

namespace sm {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  // Square stride/padding/dilation, as nn.Conv2d(stride=s, padding=p, dilation=d).
  static Conv2dParams make(int64_t stride, int64_t padding = 0, int64_t dilation = 1) {
    return {stride, stride, padding, padding, dilation, dilation};
  }
};

// y = conv(x, weight) + bias.
//   x      (N, Cin, H, W)
//   weight (Cout, Cin, kh, kw)
//   bias   (Cout) or an undefined Var (no bias)
//   y      (N, Cout, Ho, Wo)
// float32 or float64 (all the same dtype) on the CPU; float32 on CUDA (cuDNN) when x is there.
Var conv2d(const Var& x, const Var& weight, const Var& bias, const Conv2dParams& p);

// The kernel geometry of conv2d(x, weight, bias, p) after conv2d's checks of the user's shapes
// (bias may be undefined); fails with the message conv2d would give.
kernels::Conv2dGeometry conv2d_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                        const Conv2dParams& p);

// nn.Conv2d: parameters "weight" (Cout, Cin, kh, kw) and optionally "bias" (Cout).
// Init: weight ~ N(0, 2 / fan_out), fan_out = Cout*kh*kw (Kaiming normal, mode fan_out, like
// torchvision's ResNet); bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Rng& rng, const Conv2dParams& p = {},
         bool bias = true);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Rng& rng,
         const Conv2dParams& p, bool bias);
  Var forward(const Var& x) override;  // (N, Cin, H, W) -> (N, Cout, Ho, Wo)
  std::string type_name() const override { return "Conv2d"; }

  const Conv2dParams& params() const { return p_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  Var weight() const { return weight_; }
  Var bias() const { return bias_; }

 private:
  int64_t in_, out_;
  Conv2dParams p_;
  Var weight_;  // (Cout, Cin, kh, kw)
  Var bias_;    // (Cout) or undefined
};

}  // namespace sm
