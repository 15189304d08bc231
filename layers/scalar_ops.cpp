// Scalar arithmetic on Vars (see scalar_ops.h).
#include "layers/scalar_ops.h"

#include "tensor/ops.h"

namespace sm {

Var scale(const Var& x, double s) {
  return var_make_result(tensor_scale(x.value(), s), {x}, "scale",
                         [x, s](const Tensor& g) { x.grad_accumulate(tensor_scale(g, s)); });
}

}  // namespace sm
