// BatchNorm2d in training mode with its batch statistics taken over every process of a
// data-parallel run (torch.nn.SyncBatchNorm): N processes holding slices of one batch normalise
// exactly as one process holding the whole batch would, up to float rounding.
#pragma once
#include "autograd/var.h"
#include "layers/batch_stats_reducer.h"
#include "layers/batchnorm2d.h"

namespace sm {

// As batchnorm2d(x, weight, bias, running_mean, running_var, training = true, p), with μ, σ² and
// the backward's two per-channel sums reduced through `reducer` (every process calls this for
// the same layers in the same order). CPU tensors, float32 or float64.
//   x (N, C, H, W), this process's rows;  weight, bias (C) or undefined;  running_* (C) or null.
//   y (N, C, H, W)
Var batchnorm2d_sync(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                     const BatchNormParams& p, BatchStatsReducer& reducer);

}  // namespace sm
