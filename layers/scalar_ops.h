// Scalar arithmetic on Vars, for weighting loss terms: y = s·x.
#pragma once
#include "autograd/var.h"

namespace sm {

// y = s·x (any shape);  ∂L/∂x = s·∂L/∂y.
Var scale(const Var& x, double s);

}  // namespace sm
