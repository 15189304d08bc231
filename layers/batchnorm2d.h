// BatchNorm2d like torch.nn.BatchNorm2d (affine, track_running_stats): batch statistics with
// the biased variance in training (running_var is updated with the unbiased one), running
// statistics in eval.
#pragma once
#include "layers/module.h"

namespace sm {

struct BatchNormParams {
  double momentum = 0.1;  // running = (1 - momentum) * running + momentum * batch statistic
  double eps = 1e-5;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.
//   x      (N, C, H, W)
//   weight (C) or undefined (= 1);  bias (C) or undefined (= 0)
//   running_mean, running_var (C): read in eval; in training updated in place when not null
//   (mean and var of the batch over N, H, W; var unbiased, i.e. × M/(M-1), M = N*H*W).
//   y      (N, C, H, W)
Var batchnorm2d(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                bool training, const BatchNormParams& p = {});

// Parameters "weight" (C) = 1, "bias" (C) = 0; buffers "running_mean" (C) = 0, "running_var"
// (C) = 1, "num_batches_tracked" () = 0. num_batches_tracked is stored as a float tensor of
// shape () here (PyTorch stores int64; the weights I/O converts).
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormParams& p = {});
  Var forward(const Var& x) override;  // (N, C, H, W) -> (N, C, H, W)
  std::string type_name() const override { return "BatchNorm2d"; }

  int64_t num_features() const { return c_; }
  const BatchNormParams& params() const { return p_; }
  Var weight() const { return weight_; }
  Var bias() const { return bias_; }
  Var running_mean() const { return running_mean_; }
  Var running_var() const { return running_var_; }
  Var num_batches_tracked() const { return num_batches_tracked_; }

 private:
  int64_t c_;
  BatchNormParams p_;
  Var weight_, bias_;                                        // (C)
  Var running_mean_, running_var_, num_batches_tracked_;     // (C), (C), ()
};

}  // namespace sm
