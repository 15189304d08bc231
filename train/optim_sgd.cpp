// SGD with momentum, dampening, Nesterov and L2 weight decay; follows torch.optim.SGD
// (_single_tensor_sgd, torch 1.13): the momentum buffer starts as a copy of the first step's d.
#include "train/optimizer.h"

#ifdef SPINEMARK_CUDA
#include "cuda/ops_cuda.h"
#endif

namespace sm {

Sgd::Sgd(ParameterBuffer& params, const SgdConfig& config) : Optimizer(params, config.lr), config_(config) {
  SM_CHECK(config.momentum >= 0.0 && config.weight_decay >= 0.0, "SGD: momentum and weight_decay must be >= 0");
  SM_CHECK(!config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
           "SGD: Nesterov momentum requires a momentum > 0 and zero dampening");
  if (config.momentum != 0.0) buf_ = moment_add("momentum_buffer");
}

void Sgd::group_step(ParameterGroup& group, size_t gi) {
#ifdef SPINEMARK_CUDA
  if (group.device == Device::CUDA) {  // the fused kernel (cuda/optim.cu)
    float* b = config_.momentum != 0.0 ? moment(buf_, gi).f32() : nullptr;
    cuda::sgd_step(group.values.numel(), group.values.f32(), group.grads.f32(), b, lr_, config_.momentum,
                   config_.dampening, config_.weight_decay, config_.nesterov, step_);
    return;
  }
#endif
  dispatch_float(group.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = group.values.data<T>();
    const T* g = group.grads.data<T>();
    T* b = config_.momentum != 0.0 ? moment(buf_, gi).data<T>() : nullptr;
    const T wd = T(config_.weight_decay), mom = T(config_.momentum), damp1 = T(1.0 - config_.dampening);
    const T neg_lr = T(-lr_);
    const bool first = step_ == 1, nesterov = config_.nesterov, decay = config_.weight_decay != 0.0;
    const int64_t n = group.values.numel();
    for (int64_t i = 0; i < n; ++i) {
      T d = decay ? g[i] + wd * p[i] : g[i];
      if (b) {
        b[i] = first ? d : mom * b[i] + damp1 * d;
        d = nesterov ? d + mom * b[i] : b[i];
      }
      p[i] = p[i] + neg_lr * d;
    }
  });
}

}  // namespace sm
