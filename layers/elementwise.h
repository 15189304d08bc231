// Small autograd ops on Vars: residual add, reshape, and the gradient-buffer helper that every
// layer's backward uses to add into an input's gradient in place.
#pragma once
#include "autograd/var.h"

namespace sm {


// out = a + b (same shape): the residual connection. Backward: da += g, db += g.
Var add(const Var& a, const Var& b);

// out = relu(a + b) in one pass (the end of every ResNet block). Backward: g' = g * [out > 0];
// da += g', db += g'.
Var add_relu(const Var& a, const Var& b);

// A view of x with a new shape (same number of elements). Backward: dx += reshape(g, x.shape).
Var reshape(const Var& x, const Shape& shape);

}  // namespace sm
