// ReLU (see activation.h): one kernel call each way (tensor/kernels/elementwise.h).
#include "layers/activation.h"

#include "tensor/kernels/elementwise.h"

namespace sm {

Var relu(const Var& x) {
  Tensor xc = x.value().contiguous();
  Tensor y = Tensor::empty(xc.shape(), xc.dtype(), xc.device());  // same shape as x
  kernels::relu_forward(xc, y);
  // Backward reads the output: y > 0 exactly where x > 0.
  return var_make_result(y, {x}, "relu", [x, y](const Tensor& g) {
    kernels::relu_backward(y, g.contiguous(), x.grad_buffer());
  });
}

}  // namespace sm
