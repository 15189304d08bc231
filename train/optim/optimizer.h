// Optimizers on a ParameterBuffer's flat value/gradient buffers: SGD (momentum, dampening,
// Nesterov, weight decay), Adam, AdamW and RMSprop with exactly torch.optim's update formulas and
// defaults (torch 1.13 _single_tensor_* code paths), float32 and float64. Moments live in flat
// buffers laid out like the parameters, exported as named views for checkpoints. Also gradient
// clipping by global norm (torch.nn.utils.clip_grad_norm_).
#pragma once
#include <string>
#include <vector>

#include "layers/parameter_buffer.h"
#include "tensor/kernels/kernel_list.h"
#include "tensor/safetensors.h"

namespace sm {

class Optimizer {
 public:
  Optimizer(ParameterBuffer& params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual const char* name() const = 0;  // "sgd", "adam", "adamw", "rmsprop": the state-name prefix
  // The fused step of tensor/kernels/optim.h this optimizer runs: sgd_step, adam_step (Adam and
  // AdamW) or rmsprop_step.
  virtual kernels::KernelId step_kernel() const = 0;

  // One update with the current lr from the gradients in the flat buffer (gathered first, see
  // ParameterBuffer::grads_gather). CPU groups (F32/F64) or, in a CUDA build, float32 CUDA groups
  // (fused kernels of cuda/optim.cu). Unlike torch, parameters that got
  // no gradient are updated with a zero gradient (they are not skipped).
  void step();
  void zero_grad() { params_.grad_zero(); }

  double lr() const { return lr_; }
  void lr_set(double lr) { lr_ = lr; }
  int64_t step_count() const { return step_; }
  ParameterBuffer& params() { return params_; }

  // "<name>.step" (F64 scalar, a copy) and "<name>.<moment>.<parameter>" (views into the flat
  // moment buffers), e.g. "adam.exp_avg.layer1.0.conv1.weight".
  std::vector<NamedTensor> state_named() const;
  // Restores the state from a file holding exactly state_named()'s names, shapes and dtypes
  // (checked first, weights_assign rules; nothing is changed on failure).
  void state_assign(const SafeTensorsFile& file, const std::string& source);
  void state_check(const SafeTensorsFile& file, const std::string& source) const;  // the checks alone

 protected:
  // Adds a moment buffer (zeros, one flat tensor per parameter group); returns its index.
  size_t moment_add(const std::string& moment_name);
  Tensor& moment(size_t index, size_t group) { return moments_[index][group]; }
  // Updates one group; step_ has already been incremented (1 on the first step).
  virtual void group_step(ParameterGroup& group, size_t group_index) = 0;

  ParameterBuffer& params_;
  double lr_;
  int64_t step_ = 0;

 private:
  std::vector<std::string> moment_names_;
  std::vector<std::vector<Tensor>> moments_;  // [moment][group] (numel,)
};

struct SgdConfig {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0 (as torch)
};

// d = g + wd p; b = d (first step) or momentum b + (1 - dampening) d;
// d = d + momentum b (Nesterov) or b; p -= lr d.
class Sgd : public Optimizer {
 public:
  Sgd(ParameterBuffer& params, const SgdConfig& config);
  const char* name() const override { return "sgd"; }
  kernels::KernelId step_kernel() const override { return kernels::KernelId::sgd_step; }
  const SgdConfig& config() const { return config_; }

 private:
  void group_step(ParameterGroup& group, size_t group_index) override;
  SgdConfig config_;
  size_t buf_ = 0;
};

struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled (torch default 1e-2)
};

// Adam: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// AdamW: p *= 1 - lr wd first, and no L2 term.
class Adam : public Optimizer {
 public:
  Adam(ParameterBuffer& params, const AdamConfig& config, bool decoupled_weight_decay = false);
  const char* name() const override { return decoupled_ ? "adamw" : "adam"; }
  kernels::KernelId step_kernel() const override { return kernels::KernelId::adam_step; }
  const AdamConfig& config() const { return config_; }

 private:
  void group_step(ParameterGroup& group, size_t group_index) override;
  AdamConfig config_;
  bool decoupled_;
  size_t m_ = 0, v_ = 0;
};

// AdamW: Adam with decoupled weight decay. AdamConfig's weight_decay defaults to 0 (torch's Adam
// default); torch's AdamW default is 1e-2, so set it explicitly.
class AdamW : public Adam {
 public:
  AdamW(ParameterBuffer& params, const AdamConfig& config) : Adam(params, config, true) {}
};

struct RmspropConfig {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

// g += wd p; s = alpha s + (1-alpha) g^2; centered: a = alpha a + (1-alpha) g, d = sqrt(s - a^2) + eps,
// else d = sqrt(s) + eps; momentum: b = momentum b + g / d, p -= lr b; else p -= lr g / d.
class Rmsprop : public Optimizer {
 public:
  Rmsprop(ParameterBuffer& params, const RmspropConfig& config);
  const char* name() const override { return "rmsprop"; }
  kernels::KernelId step_kernel() const override { return kernels::KernelId::rmsprop_step; }
  const RmspropConfig& config() const { return config_; }

 private:
  void group_step(ParameterGroup& group, size_t group_index) override;
  RmspropConfig config_;
  size_t square_avg_ = 0, momentum_buffer_ = 0, grad_avg_ = 0;
};

// Global L2 norm of all gradients (sum of squares in double, groups and elements in fixed order).
double grad_norm(ParameterBuffer& params);
// Scales every gradient by max_norm / (norm + 1e-6) when that is below 1 (torch's
// clip_grad_norm_); returns the norm before clipping. max_norm <= 0 only measures.
double grad_clip_norm(ParameterBuffer& params, double max_norm);

}  // namespace sm
