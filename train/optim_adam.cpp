// Adam and AdamW; follows torch.optim.Adam / AdamW (_single_tensor_adam(w), torch 1.13), including
// the order of operations: denom = sqrt(v) / sqrt(1 - b2^t) + eps, p += (-lr / (1 - b1^t)) m / denom.
#include <cmath>

#include "train/optimizer.h"

#ifdef SPINEMARK_CUDA
#include "cuda/ops_cuda.h"
#endif

namespace sm {

Adam::Adam(ParameterBuffer& params, const AdamConfig& config, bool decoupled_weight_decay)
    : Optimizer(params, config.lr), config_(config), decoupled_(decoupled_weight_decay) {
  SM_CHECK(config.beta1 >= 0.0 && config.beta1 < 1.0 && config.beta2 >= 0.0 && config.beta2 < 1.0,
           "Adam: betas must lie in [0, 1), got (" << config.beta1 << ", " << config.beta2 << ")");
  SM_CHECK(config.eps >= 0.0 && config.weight_decay >= 0.0, "Adam: eps and weight_decay must be >= 0");
  m_ = moment_add("exp_avg");
  v_ = moment_add("exp_avg_sq");
}

void Adam::group_step(ParameterGroup& group, size_t gi) {
#ifdef SPINEMARK_CUDA
  if (group.device == Device::CUDA) {  // the fused kernel: same formulas, same order (cuda/optim.cu)
    cuda::adam_step(group.values.numel(), group.values.f32(), group.grads.f32(), moment(m_, gi).f32(),
                    moment(v_, gi).f32(), lr_, config_.beta1, config_.beta2, config_.eps, config_.weight_decay,
                    decoupled_, step_);
    return;
  }
#endif
  const double t = double(step_);
  const double bias_correction1 = 1.0 - std::pow(config_.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(config_.beta2, t));
  const double step_size = lr_ / bias_correction1;
  dispatch_float(group.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = group.values.data<T>();
    const T* g = group.grads.data<T>();
    T* m = moment(m_, gi).data<T>();
    T* v = moment(v_, gi).data<T>();
    const T b1 = T(config_.beta1), c1 = T(1.0 - config_.beta1), b2 = T(config_.beta2), c2 = T(1.0 - config_.beta2);
    const T eps = T(config_.eps), bc2s = T(bias_correction2_sqrt), neg_step = T(-step_size);
    const T l2 = decoupled_ ? T(0) : T(config_.weight_decay);
    const T shrink = T(1.0 - lr_ * config_.weight_decay);  // AdamW: p *= 1 - lr wd
    const bool decay = config_.weight_decay != 0.0;
    const int64_t n = group.values.numel();
    for (int64_t i = 0; i < n; ++i) {
      if (decoupled_ && decay) p[i] = p[i] * shrink;
      const T gi_ = (!decoupled_ && decay) ? g[i] + l2 * p[i] : g[i];
      m[i] = b1 * m[i] + c1 * gi_;
      v[i] = b2 * v[i] + (c2 * gi_) * gi_;
      const T denom = std::sqrt(v[i]) / bc2s + eps;
      p[i] = p[i] + (neg_step * m[i]) / denom;
    }
  });
}

}  // namespace sm
