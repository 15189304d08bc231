// The output size of a convolution or pooling window along one axis: the one copy of the formula
// for the layers, the kernel geometries, the CPU twins (Winograd included) and cuda/. Plain C++
// with no other include, so nvcc-compiled code and cuda/ may include it.
#pragma once
#include <cstdint>

namespace sm::kernels {

// A window of `kernel` taps spaced `dilation` apart spans e = dilation·(kernel − 1) + 1 input
// cells. On an input of `in` cells padded by `pad` on both sides it fits at the positions
// 0, stride, 2·stride, ... up to in + 2·pad − e, hence
//   out = (in + 2·pad − dilation·(kernel − 1) − 1) / stride + 1
// (torch.nn.Conv2d's formula; floor mode: a last partial window is dropped). Max pooling is the
// same with dilation 1: (in + 2·pad − kernel) / stride + 1. Callers check out > 0. The division
// is C++'s, truncating toward zero: a window that overhangs the padded input by r cells gives
// out = 1 − ⌊r/stride⌋, so 1 (where torch's floor division gives 0) while 0 < r < stride.
constexpr int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

}  // namespace sm::kernels
