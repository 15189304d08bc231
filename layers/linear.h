// Linear (fully connected) layer like torch.nn.Linear: y = x Wᵀ + b.
#pragma once
#include "layers/module.h"
#include "tensor/rng.h"

namespace sm {

// x (N, in), weight (out, in), bias (out) or undefined -> y (N, out).
// Backward: dx += g W, dW += gᵀ x, db += Σ_n g.
Var linear(const Var& x, const Var& weight, const Var& bias);

// Parameters "weight" (out, in), "bias" (out); both ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true);
  Var forward(const Var& x) override { return linear(x, weight_, bias_); }  // (N, in) -> (N, out)
  std::string type_name() const override { return "Linear"; }
  Var weight() const { return weight_; }
  Var bias() const { return bias_; }

 private:
  Var weight_;  // (out, in)
  Var bias_;    // (out) or undefined
};

}  // namespace sm
