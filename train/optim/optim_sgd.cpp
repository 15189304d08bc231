// SGD with momentum, dampening, Nesterov and L2 weight decay; follows torch.optim.SGD
// (_single_tensor_sgd, torch 1.13): the momentum buffer starts as a copy of the first step's d.
#include "train/optim/optimizer.h"

#include "tensor/kernels/optim.h"

namespace sm {

Sgd::Sgd(ParameterBuffer& params, const SgdConfig& config) : Optimizer(params, config.lr), config_(config) {
  SM_CHECK(config.momentum >= 0.0 && config.weight_decay >= 0.0, "SGD: momentum and weight_decay must be >= 0");
  SM_CHECK(!config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
           "SGD: Nesterov momentum requires a momentum > 0 and zero dampening");
  if (config.momentum != 0.0) buf_ = moment_add("momentum_buffer");
}

void Sgd::group_step(ParameterGroup& group, size_t gi) {
  kernels::SgdStep st;
  st.lr = lr_, st.momentum = config_.momentum, st.dampening = config_.dampening;
  st.weight_decay = config_.weight_decay, st.nesterov = config_.nesterov, st.step = step_;
  kernels::sgd_step(st, group.values, group.grads, config_.momentum != 0.0 ? &moment(buf_, gi) : nullptr);
}

}  // namespace sm
