// CPU optimizer steps (contract: tensor/kernels/optim.h). The order of operations follows
// torch.optim 1.13's single-tensor implementations, so that float32 runs match PyTorch's to the
// last bit where PyTorch itself is deterministic.
#include <cmath>

#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

void sgd_step(const kernels::SgdStep& s, Tensor& p, const Tensor& g, Tensor* buf) {
  dispatch_float(p.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* b = buf ? buf->data<T>() : nullptr;
    const T wd = T(s.weight_decay), mom = T(s.momentum), damp1 = T(1.0 - s.dampening), neg_lr = T(-s.lr);
    const bool first = s.step == 1, decay = s.weight_decay != 0.0;
    for (int64_t i = 0, n = p.numel(); i < n; ++i) {
      T d = decay ? gp[i] + wd * pp[i] : gp[i];
      if (b) {
        b[i] = first ? d : mom * b[i] + damp1 * d;
        d = s.nesterov ? d + mom * b[i] : b[i];
      }
      pp[i] = pp[i] + neg_lr * d;
    }
  });
}

// denom = sqrt(v) / sqrt(1 − β2^t) + eps;  p += (−lr / (1 − β1^t)) · m / denom.
void adam_step(const kernels::AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  const double t = double(s.step);
  const double bias_correction1 = 1.0 - std::pow(s.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(s.beta2, t));
  const double step_size = s.lr / bias_correction1;
  dispatch_float(p.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* mp = m.data<T>();
    T* vp = v.data<T>();
    const T b1 = T(s.beta1), c1 = T(1.0 - s.beta1), b2 = T(s.beta2), c2 = T(1.0 - s.beta2);
    const T eps = T(s.eps), bc2s = T(bias_correction2_sqrt), neg_step = T(-step_size);
    const T l2 = s.decoupled ? T(0) : T(s.weight_decay);
    const T shrink = T(1.0 - s.lr * s.weight_decay);  // AdamW: p *= 1 − lr wd
    const bool decay = s.weight_decay != 0.0;
    const int64_t n = p.numel();
    // Element-wise: threads change nothing in the result (no reduction).
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      if (s.decoupled && decay) pp[i] = pp[i] * shrink;
      const T gi = (!s.decoupled && decay) ? gp[i] + l2 * pp[i] : gp[i];
      mp[i] = b1 * mp[i] + c1 * gi;
      vp[i] = b2 * vp[i] + (c2 * gi) * gi;
      const T denom = std::sqrt(vp[i]) / bc2s + eps;
      pp[i] = pp[i] + (neg_step * mp[i]) / denom;
    }
  });
}

void rmsprop_step(const kernels::RmspropStep& s, Tensor& p, const Tensor& g, Tensor& square_avg, Tensor* buf,
                  Tensor* grad_avg) {
  dispatch_float(p.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* sq = square_avg.data<T>();
    T* b = buf ? buf->data<T>() : nullptr;
    T* a = grad_avg ? grad_avg->data<T>() : nullptr;
    const T alpha = T(s.alpha), c = T(1.0 - s.alpha), eps = T(s.eps);
    const T wd = T(s.weight_decay), mom = T(s.momentum), neg_lr = T(-s.lr);
    const bool decay = s.weight_decay != 0.0;
    for (int64_t i = 0, n = p.numel(); i < n; ++i) {
      const T gi = decay ? gp[i] + wd * pp[i] : gp[i];
      sq[i] = alpha * sq[i] + (c * gi) * gi;
      T avg;
      if (a) {
        a[i] = alpha * a[i] + c * gi;
        avg = std::sqrt(sq[i] + (T(-1) * a[i]) * a[i]);
      } else {
        avg = std::sqrt(sq[i]);
      }
      avg = avg + eps;
      if (b) {
        b[i] = mom * b[i] + (T(1) * gi) / avg;
        pp[i] = pp[i] + neg_lr * b[i];
      } else {
        pp[i] = pp[i] + (neg_lr * gi) / avg;
      }
    }
  });
}

}  // namespace sm::cpu
