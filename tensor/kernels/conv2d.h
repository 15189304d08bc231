// 2-D convolution kernels (cross-correlation, groups = 1, as torch.nn.Conv2d): the contract.
// CPU (cpu/conv2d.cpp): float32 runs im2col packed straight into our packed GEMM's micro-kernels
// (cpu/gemm.h, AVX-512/AVX2/scalar chosen at run time), or Winograd F(2,3)/F(4,3) for 3×3
// stride-1 undilated convs where measured faster (cpu/winograd.h); float64 and the `portable`
// family run im2col + Eigen's GEMM, the reference. CUDA (cuda/conv2d.cpp): cuDNN, float32. The
// layer (layers/conv2d.cpp) checks the user's shapes and builds the graph; the output size is
// conv_geometry.h's.
#pragma once
#include <cstdint>
#include <memory>

#include "tensor/kernels/conv_geometry.h"
#include "tensor/tensor.h"

namespace sm::cpu {
struct ConvWeightCache;  // cpu/conv2d.cpp
}

namespace sm::kernels {

struct Conv2dGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // x (N, C, H, W)
  int64_t k = 0, kh = 1, kw = 1;       // weight (K, C, kh, kw)
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t out_h() const { return conv_out_size(h, kh, stride_h, pad_h, dil_h); }  // conv_geometry.h
  int64_t out_w() const { return conv_out_size(w, kw, stride_w, pad_w, dil_w); }
  int64_t macs() const { return n * k * out_h() * out_w() * c * kh * kw; }  // multiply-adds of a forward
};

// Weights of one conv prepared once and reused by later forward calls (inference): on the CPU
// the GEMM's packed W and the Winograd-transformed filters, each built on the first call that
// needs it (the input size picks the algorithm) for the CPU kernel family of that call. It is a
// snapshot: valid only while the weight tensor passed with it keeps its values, so its owner
// builds it for frozen weights and drops it with them (layers/conv_bn_fold.h). Safe to share
// between threads. CUDA ignores it (cuDNN reads W as it is).
struct Conv2dWeightCache {
  std::shared_ptr<cpu::ConvWeightCache> cpu;
};

struct Conv2dForwardOptions {
  bool relu = false;                   // y = max(0, conv + bias): the activation fused at inference
  Conv2dWeightCache* cache = nullptr;  // prepared weights to use and fill, or none
};

// y (N, K, Ho, Wo) = conv(x, weight) + bias (then max(0, ·) with options.relu). bias (K) may be
// undefined (no bias). Assigns y. Counts g.macs() into exec_context().counters.conv2d_forward_macs.
void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                    const Conv2dForwardOptions& options = {});
// With dy = ∂L/∂y (N, K, Ho, Wo): dx (N, C, H, W) += ∂L/∂x, dweight (K, C, kh, kw) += ∂L/∂w,
// dbias (K) += Σ dy. Each output may be null (not needed). Adds.
void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor* dx,
                     Tensor* dweight, Tensor* dbias);

}  // namespace sm::kernels
