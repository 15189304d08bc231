// Linear forward and backward with Eigen GEMM (see linear.h).
#include "layers/linear.h"

#include <Eigen/Core>
#include <cmath>

#include "layers/elementwise.h"

namespace sm {

namespace {
template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using MapRC = Eigen::Map<const MatR<T>>;
}  // namespace

Var linear(const Var& x, const Var& weight, const Var& bias) {
  const Tensor& xv = x.value();
  const Tensor& wv = weight.value();
  SM_CHECK(xv.dim() == 2 && wv.dim() == 2 && xv.size(1) == wv.size(1) && xv.dtype() == wv.dtype(),
           "linear: x " << shape_str(xv.shape()) << " must be (N, in) and weight " << shape_str(wv.shape())
                        << " (out, in), same dtype");
  check_cpu("linear", xv);
  const int64_t N = xv.size(0), in = xv.size(1), out = wv.size(0);
  if (bias.defined())
    SM_CHECK(bias.value().dim() == 1 && bias.value().size(0) == out && bias.value().dtype() == xv.dtype(),
             "linear: bias " << shape_str(bias.shape()) << " must be (" << out << ")");
  Tensor xc = xv.contiguous(), wc = wv.contiguous();
  Tensor y = Tensor::empty({N, out}, xv.dtype());  // (N, out)
  dispatch_float(xv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    MapR<T> ym(y.data<T>(), N, out);
    ym.noalias() = MapRC<T>(xc.data<T>(), N, in) * MapRC<T>(wc.data<T>(), out, in).transpose();
    if (bias.defined()) {
      Tensor bc = bias.value().contiguous();
      ym.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bc.data<T>(), out);
    }
  });
  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(y, inputs, "linear", [x, weight, bias, xc, wc, N, in, out](const Tensor& g) {
    Var xv = x, wv = weight, bv = bias;
    Tensor gc = g.contiguous();
    dispatch_float(gc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      MapRC<T> gm(gc.data<T>(), N, out);  // (N, out)
      if (xv.requires_grad())            // dx (N, in) += g W
        MapR<T>(var_grad_buffer(xv).template data<T>(), N, in).noalias() += gm * MapRC<T>(wc.data<T>(), out, in);
      if (wv.requires_grad())            // dW (out, in) += gᵀ x
        MapR<T>(var_grad_buffer(wv).template data<T>(), out, in).noalias() +=
            gm.transpose() * MapRC<T>(xc.data<T>(), N, in);
      if (bv.defined() && bv.requires_grad()) {  // db (out) += Σ_n g
        T* db = var_grad_buffer(bv).template data<T>();
        for (int64_t n = 0; n < N; ++n)
          for (int64_t o = 0; o < out; ++o) db[o] += gm(n, o);
      }
    });
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
