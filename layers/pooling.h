// Max pooling (torch.nn.MaxPool2d: kernel, stride, padding with -inf, dilation 1, floor mode)
// and global average pooling (N, C, H, W) -> (N, C).
#pragma once
#include "layers/module.h"

namespace sm {

struct MaxPool2dParams {
  int64_t kernel = 2;
  int64_t stride = 0;  // 0: = kernel (PyTorch's default)
  int64_t padding = 0; // <= kernel / 2, padded cells never win
};

// x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = floor((H + 2p - k)/s) + 1. Backward: the gradient of
// each output goes to the input that was its maximum (the first one in row-major window order
// on ties); dx += scatter(g).
Var max_pool2d(const Var& x, const MaxPool2dParams& p);

// x (N, C, H, W) -> y (N, C) = mean over H, W. Backward: dx[n,c,:,:] += g[n,c] / (H*W).
Var global_avg_pool(const Var& x);

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dParams& p) : p_(p) {}
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0) : p_{kernel, stride, padding} {}
  Var forward(const Var& x) override { return max_pool2d(x, p_); }
  std::string type_name() const override { return "MaxPool2d"; }

 private:
  MaxPool2dParams p_;
};

class GlobalAvgPool : public Module {
 public:
  Var forward(const Var& x) override { return global_avg_pool(x); }  // (N, C, H, W) -> (N, C)
  std::string type_name() const override { return "GlobalAvgPool"; }
};

}  // namespace sm
