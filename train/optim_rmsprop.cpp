// RMSprop with optional momentum and centering; follows torch.optim.RMSprop
// (_single_tensor_rmsprop, torch 1.13): eps is added after the square root; buffers start at 0.
#include <cmath>

#include "train/optimizer.h"

#ifdef SPINEMARK_CUDA
#include "cuda/ops_cuda.h"
#endif

namespace sm {

Rmsprop::Rmsprop(ParameterBuffer& params, const RmspropConfig& config) : Optimizer(params, config.lr), config_(config) {
  SM_CHECK(config.alpha >= 0.0 && config.eps >= 0.0 && config.momentum >= 0.0 && config.weight_decay >= 0.0,
           "RMSprop: alpha, eps, momentum and weight_decay must be >= 0");
  square_avg_ = moment_add("square_avg");
  if (config.momentum > 0.0) momentum_buffer_ = moment_add("momentum_buffer");
  if (config.centered) grad_avg_ = moment_add("grad_avg");
}

void Rmsprop::group_step(ParameterGroup& group, size_t gi) {
#ifdef SPINEMARK_CUDA
  if (group.device == Device::CUDA) {  // the fused kernel (cuda/optim.cu)
    float* b = config_.momentum > 0.0 ? moment(momentum_buffer_, gi).f32() : nullptr;
    float* a = config_.centered ? moment(grad_avg_, gi).f32() : nullptr;
    cuda::rmsprop_step(group.values.numel(), group.values.f32(), group.grads.f32(), moment(square_avg_, gi).f32(), b, a,
                       lr_, config_.alpha, config_.eps, config_.weight_decay, config_.momentum, config_.centered);
    return;
  }
#endif
  dispatch_float(group.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = group.values.data<T>();
    const T* g = group.grads.data<T>();
    T* s = moment(square_avg_, gi).data<T>();
    T* b = config_.momentum > 0.0 ? moment(momentum_buffer_, gi).data<T>() : nullptr;
    T* a = config_.centered ? moment(grad_avg_, gi).data<T>() : nullptr;
    const T alpha = T(config_.alpha), c = T(1.0 - config_.alpha), eps = T(config_.eps);
    const T wd = T(config_.weight_decay), mom = T(config_.momentum), neg_lr = T(-lr_);
    const bool decay = config_.weight_decay != 0.0;
    const int64_t n = group.values.numel();
    for (int64_t i = 0; i < n; ++i) {
      const T gi_ = decay ? g[i] + wd * p[i] : g[i];
      s[i] = alpha * s[i] + (c * gi_) * gi_;
      T avg;
      if (a) {
        a[i] = alpha * a[i] + c * gi_;
        avg = std::sqrt(s[i] + (T(-1) * a[i]) * a[i]);
      } else {
        avg = std::sqrt(s[i]);
      }
      avg = avg + eps;
      if (b) {
        b[i] = mom * b[i] + (T(1) * gi_) / avg;
        p[i] = p[i] + neg_lr * b[i];
      } else {
        p[i] = p[i] + (neg_lr * gi_) / avg;
      }
    }
  });
}

}  // namespace sm
