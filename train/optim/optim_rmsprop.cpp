// RMSprop with optional momentum and centering; follows torch.optim.RMSprop
// (_single_tensor_rmsprop, torch 1.13): eps is added after the square root; buffers start at 0.
#include <cmath>

#include "train/optim/optimizer.h"

#include "tensor/kernels/optim.h"

namespace sm {

Rmsprop::Rmsprop(ParameterBuffer& params, const RmspropConfig& config) : Optimizer(params, config.lr), config_(config) {
  SM_CHECK(config.alpha >= 0.0 && config.eps >= 0.0 && config.momentum >= 0.0 && config.weight_decay >= 0.0,
           "RMSprop: alpha, eps, momentum and weight_decay must be >= 0");
  square_avg_ = moment_add("square_avg");
  if (config.momentum > 0.0) momentum_buffer_ = moment_add("momentum_buffer");
  if (config.centered) grad_avg_ = moment_add("grad_avg");
}

void Rmsprop::group_step(ParameterGroup& group, size_t gi) {
  kernels::RmspropStep st;
  st.lr = lr_, st.alpha = config_.alpha, st.eps = config_.eps, st.weight_decay = config_.weight_decay;
  st.momentum = config_.momentum, st.centered = config_.centered;
  kernels::rmsprop_step(st, group.values, group.grads, moment(square_avg_, gi),
                        config_.momentum > 0.0 ? &moment(momentum_buffer_, gi) : nullptr,
                        config_.centered ? &moment(grad_avg_, gi) : nullptr);
}

}  // namespace sm
