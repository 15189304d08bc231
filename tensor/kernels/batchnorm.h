// BatchNorm2d kernels (torch.nn.BatchNorm2d: affine, running statistics): the contract.
// Per channel c over M = N·H·W values, x̂ = (x − μ)·s, s = 1/sqrt(σ² + eps), y = γ x̂ + β.
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace sm::kernels {

struct BatchNormGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // x (N, C, H, W)
};

// What a backward needs, the same on both devices: the statistics the forward normalised with.
struct BatchNormSaved {
  bool training = true;  // batch statistics (training) or running statistics (eval)
  Tensor mean;           // (C) μ, on x's device, x's dtype
  Tensor invstd;         // (C) s = 1/sqrt(σ² + eps)
};

// Training: μ and the biased σ² of the batch; running statistics (when given) updated in place
// as PyTorch: r = (1 − momentum) r + momentum · stat, with the unbiased variance (× M/(M−1)).
// weight/bias (C) may be undefined (= 1 / 0). Assigns y (N, C, H, W); returns μ and s.
BatchNormSaved batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, Tensor* running_mean, Tensor* running_var,
                                       double momentum, double eps, Tensor& y);
// Eval: normalises with the running statistics. Assigns y. Returns copies of μ and s when
// `save` (a backward will follow; a later training step may change the running statistics),
// else an empty struct.
BatchNormSaved batchnorm_forward_eval(const BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                                      const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                      double eps, Tensor& y, bool save);
// dγ += Σ g x̂, dβ += Σ g, and dx += γ s (g − Σg/M − x̂ Σ(g x̂)/M) (training) or γ s g (eval,
// where μ and s are constants). dx, dweight, dbias may be null. Adds.
void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& weight, const BatchNormSaved& saved,
                        const Tensor& dy, Tensor* dx, Tensor* dweight, Tensor* dbias);

}  // namespace sm::kernels
