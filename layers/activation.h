// ReLU: y = max(x, 0), like torch.nn.ReLU (not in place).
#pragma once
#include "layers/module.h"

namespace sm {

// x (any shape) -> y (same shape). Backward: dx += g * [x > 0] (0 at the kink x = 0, as PyTorch).
Var relu(const Var& x);

class ReLU : public Module {
 public:
  Var forward(const Var& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

}  // namespace sm
