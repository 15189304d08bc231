// A Conv2d followed by an eval-mode BatchNorm2d, folded into one convolution for inference
// (Module::inference_freeze). With the BN's per-channel scale s_k = γ_k / √(σ²_k + ε):
//   BN(conv(x))_k = γ_k (W_k ∗ x + b_k − μ_k) / √(σ²_k + ε) + β_k
//                 = (s_k W_k) ∗ x + (s_k (b_k − μ_k) + β_k)
// so one conv with W'_k = s_k W_k and b'_k = s_k (b_k − μ_k) + β_k gives the same output without
// the BN pass (which reads and writes the whole activation), and a ReLU that follows is applied
// as the conv writes its output (one pass less again). The folded weights are a snapshot: taken
// when the network is frozen, in float64, then rounded to the weights' dtype; the float32
// results differ from the unfolded layers by rounding only (tests/test_inference_freeze.cpp).
// The folded conv keeps its weights packed / Winograd-transformed between calls
// (kernels::Conv2dWeightCache).
#pragma once
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"

namespace sm {

class FoldedConv {
 public:
  // bn may be null: the conv alone (its weights and bias as they are).
  FoldedConv(const Conv2d& conv, const BatchNorm2d* bn);
  // y = conv'(x) (+ max(0, ·) with relu), without a graph. x as Conv2d::forward takes it.
  Var forward(const Var& x, bool relu);

 private:
  Tensor weight_, bias_;  // folded: (Cout, Cin, kh, kw), (Cout)
  Conv2dParams p_;
  kernels::Conv2dWeightCache cache_;
};

}  // namespace sm
