// Fused optimizer steps on flat parameter buffers: the contract. The formulas and their order
// follow torch.optim (1.13), documented in train/optim/optimizer.h. p, g and every moment are (n) of
// one device and dtype. `step` counts from 1 (the step being taken).
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace sm::kernels {

struct SgdStep {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  int64_t step = 1;
};
// d = g + wd p; b = d (first step) or momentum b + (1 − dampening) d; d = d + momentum b
// (Nesterov) or b; p −= lr d. buf may be null when momentum == 0.
void sgd_step(const SgdStep& s, Tensor& p, const Tensor& g, Tensor* buf);

struct AdamStep {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;  // AdamW: p *= 1 − lr wd first; Adam: L2 term added to g
  int64_t step = 1;
};
// m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²; p += −lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps).
void adam_step(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v);

struct RmspropStep {
  double lr = 0, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false;
};
// s = α s + (1 − α) g²; avg = sqrt(s − a²) (centered, a = α a + (1 − α) g) or sqrt(s), + eps;
// b = momentum b + g/avg, p −= lr b (momentum) or p −= lr g/avg. buf null unless momentum > 0,
// grad_avg null unless centered.
void rmsprop_step(const RmspropStep& s, Tensor& p, const Tensor& g, Tensor& square_avg, Tensor* buf, Tensor* grad_avg);

}  // namespace sm::kernels
