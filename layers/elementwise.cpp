// Residual add, fused add+ReLU and reshape (see elementwise.h); the arithmetic is in
// tensor/kernels/elementwise.h.
#include "layers/elementwise.h"

#include "tensor/kernels/elementwise.h"

namespace sm {

namespace {
void check_pair(const char* op, const Var& a, const Var& b) {
  check_same_shape(op, a.value(), b.value());
  SM_CHECK(a.value().dtype() == b.value().dtype() && a.value().device() == b.value().device(),
           op << ": " << a.value().str() << " and " << b.value().str() << " differ in dtype or device");
}
}  // namespace

Var add(const Var& a, const Var& b) {
  check_pair("add", a, b);
  Tensor ac = a.value().contiguous(), bc = b.value().contiguous();
  Tensor out = Tensor::empty(ac.shape(), ac.dtype(), ac.device());  // (same shape as a and b)
  kernels::add_forward(ac, bc, out);
  return var_make_result(out, {a, b}, "add", [a, b](const Tensor& g) {
    // d(a+b)/da = d(a+b)/db = 1
    a.grad_accumulate(g);
    b.grad_accumulate(g);
  });
}

Var add_relu(const Var& a, const Var& b) {
  check_pair("add_relu", a, b);
  Tensor ac = a.value().contiguous(), bc = b.value().contiguous();
  Tensor out = Tensor::empty(ac.shape(), ac.dtype(), ac.device());  // (same shape as a and b)
  kernels::add_relu_forward(ac, bc, out);
  // out = max(a + b, 0): da = db = g [out > 0]; backward keeps only the output.
  return var_make_result(out, {a, b}, "add_relu", [a, b, out](const Tensor& g) {
    kernels::add_relu_backward(out, g.contiguous(), grad_target(a), grad_target(b));
  });
}

Var reshape(const Var& x, const Shape& shape) {
  Tensor out = x.value().reshape(shape);
  Shape in_shape = x.shape();
  return var_make_result(out, {x}, "reshape", [x, in_shape](const Tensor& g) {
    Var xv = x;
    xv.grad_accumulate(g.reshape(in_shape));  // dx = g viewed with x's shape
  });
}

}  // namespace sm
