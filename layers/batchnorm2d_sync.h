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
// the same layers in the same order). Float32 or float64; CPU tensors run the direct loops
// below, tensors on a GPU run batchnorm2d_sync_kernels.
//   x (N, C, H, W), this process's rows;  weight, bias (C) or undefined;  running_* (C) or null.
//   y (N, C, H, W)
Var batchnorm2d_sync(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                     const BatchNormParams& p, BatchStatsReducer& reducer);

// The same SyncBatchNorm on ANY device, built from the one-process BatchNorm kernels
// (tensor/kernels/batchnorm.h) so that a GPU rank needs no kernel of its own; only per-channel
// vectors (C values) cross to the host for the reductions (batchnorm2d_sync_kernels.cpp gives the
// algebra). What GPU ranks run; the tests also run it on the CPU against the direct version.
Var batchnorm2d_sync_kernels(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                             const BatchNormParams& p, BatchStatsReducer& reducer);

}  // namespace sm
