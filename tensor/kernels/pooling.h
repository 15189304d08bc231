// Pooling kernels: max pooling (torch.nn.MaxPool2d, padding never wins, floor mode) and global
// average pooling. The contract.
#pragma once
#include <cstdint>
#include <memory>

#include "tensor/kernels/conv_geometry.h"
#include "tensor/tensor.h"

namespace sm::kernels {

struct Pool2dGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // x (N, C, H, W)
  int64_t kernel = 2, stride = 2, pad = 0;
  // conv_geometry.h with dilation 1: (in + 2·pad − kernel)/stride + 1.
  int64_t out_h() const { return conv_out_size(h, kernel, stride, pad, 1); }
  int64_t out_w() const { return conv_out_size(w, kernel, stride, pad, 1); }
};

// What max pooling's backward needs, the same on both devices: for every output, the int32 flat
// index into its (H, W) plane of the first maximum in row-major window order.
struct MaxPoolSaved {
  std::shared_ptr<Storage> argmax;  // int32 (N, C, Ho, Wo), on x's device
};

// y (N, C, Ho, Wo) = window maxima. Assigns y; returns the argmax when `save`.
MaxPoolSaved max_pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, bool save);
// dx (N, C, H, W) += scatter of dy through the argmax. Adds.
void max_pool2d_backward(const Pool2dGeometry& g, const MaxPoolSaved& saved, const Tensor& dy, Tensor& dx);

// y (N, C) = mean of x (N, C, H, W) over H, W. Assigns y.
void global_avg_pool_forward(const Tensor& x, Tensor& y);
// dx (N, C, H, W) += dy (N, C) / (H W). Adds.
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);

}  // namespace sm::kernels
