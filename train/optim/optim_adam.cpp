// Adam and AdamW; follows torch.optim.Adam / AdamW (_single_tensor_adam(w), torch 1.13), including
// the order of operations: denom = sqrt(v) / sqrt(1 - b2^t) + eps, p += (-lr / (1 - b1^t)) m / denom.
#include <cmath>

#include "train/optim/optimizer.h"

#include "tensor/kernels/optim.h"

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
  kernels::AdamStep st;
  st.lr = lr_, st.beta1 = config_.beta1, st.beta2 = config_.beta2, st.eps = config_.eps;
  st.weight_decay = config_.weight_decay, st.decoupled = decoupled_, st.step = step_;
  kernels::adam_step(st, group.values, group.grads, moment(m_, gi), moment(v_, gi));
}

}  // namespace sm
