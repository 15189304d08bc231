// Linear layer (see linear.h): shape checks, the graph node and one kernel call each way
// (tensor/kernels/linear.h: Eigen GEMM on the CPU, cuBLAS on CUDA).
#include "layers/linear.h"

#include <cmath>

#include "tensor/kernels/linear.h"

namespace sm {

Var linear(const Var& x, const Var& weight, const Var& bias) {
  const Tensor& xv = x.value();
  const Tensor& wv = weight.value();
  SM_CHECK(xv.dim() == 2 && wv.dim() == 2 && xv.size(1) == wv.size(1) && xv.dtype() == wv.dtype(),
           "linear: x " << shape_str(xv.shape()) << " must be (N, in) and weight " << shape_str(wv.shape())
                        << " (out, in), same dtype");
  const int64_t N = xv.size(0), out = wv.size(0);
  if (bias.defined())
    SM_CHECK(bias.value().dim() == 1 && bias.value().size(0) == out && bias.value().dtype() == xv.dtype(),
             "linear: bias " << shape_str(bias.shape()) << " must be (" << out << ")");
  Tensor xc = xv.contiguous(), wc = wv.contiguous();
  Tensor bc = bias.defined() ? bias.value().contiguous() : Tensor();
  Tensor y = Tensor::empty({N, out}, xc.dtype(), xc.device());  // (N, out)
  kernels::linear_forward(xc, wc, bc, y);
  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(y, inputs, "linear", [x, weight, bias, xc, wc](const Tensor& g) {
    kernels::linear_backward(xc, wc, g.contiguous(), grad_target(x), grad_target(weight), grad_target(bias));
  });
}

Linear::Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias) {
  SM_CHECK(in_features > 0 && out_features > 0, "Linear: feature counts must be positive");
  const double bound = 1.0 / std::sqrt(double(in_features));
  Tensor w = Tensor::empty({out_features, in_features});  // (out, in)
  tensor_fill_uniform(w, rng, -bound, bound);
  weight_ = parameter_add("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out_features});  // (out)
    tensor_fill_uniform(b, rng, -bound, bound);
    bias_ = parameter_add("bias", b);
  }
}

}  // namespace sm
