// Linear forward and backward with Eigen GEMM (see linear.h).
#include "layers/linear.h"

#include <Eigen/Core>
#include <cmath>

#include "layers/cuda_glue.h"
#include "layers/elementwise.h"

namespace sm {

namespace {
template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using MapRC = Eigen::Map<const MatR<T>>;
#ifdef SPINEMARK_CUDA
// The CUDA twin (cuda/linear_cublas.cpp, cuBLAS SGEMM).
Var linear_cuda(const Var& x, const Var& weight, const Var& bias, int64_t N, int64_t in, int64_t out) {
  Tensor xc = x.value().contiguous(), wc = weight.value().contiguous();
  Tensor y = cuda_empty({N, out});  // (N, out)
  cuda::linear_forward(N, in, out, cuda_f32_ptr("linear", xc), cuda_f32_ptr("linear", wc), cuda_value_ptr("linear", bias),
                       cuda_f32_ptr("linear", y));
  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(y, inputs, "linear", [x, weight, bias, xc, wc, N, in, out](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::linear_backward(N, in, out, cuda_f32_ptr("linear", xc), cuda_f32_ptr("linear", wc), cuda_f32_ptr("linear", gc),
                          cuda_grad_ptr("linear", x), cuda_grad_ptr("linear", weight), cuda_grad_ptr("linear", bias));
  });
}
#endif

}  // namespace

Var linear(const Var& x, const Var& weight, const Var& bias) {
  const Tensor& xv = x.value();
  const Tensor& wv = weight.value();
  SM_CHECK(xv.dim() == 2 && wv.dim() == 2 && xv.size(1) == wv.size(1) && xv.dtype() == wv.dtype(),
           "linear: x " << shape_str(xv.shape()) << " must be (N, in) and weight " << shape_str(wv.shape())
                        << " (out, in), same dtype");
#ifdef SPINEMARK_CUDA
  const bool on_gpu = xv.device() == Device::CUDA;
#else
  const bool on_gpu = false;
#endif
  if (!on_gpu) check_cpu("linear", xv);
  const int64_t N = xv.size(0), in = xv.size(1), out = wv.size(0);
  if (bias.defined())
    SM_CHECK(bias.value().dim() == 1 && bias.value().size(0) == out && bias.value().dtype() == xv.dtype(),
             "linear: bias " << shape_str(bias.shape()) << " must be (" << out << ")");
#ifdef SPINEMARK_CUDA
  if (on_gpu) return linear_cuda(x, weight, bias, N, in, out);
#endif
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
        MapR<T>(xv.grad_buffer().template data<T>(), N, in).noalias() += gm * MapRC<T>(wc.data<T>(), out, in);
      if (wv.requires_grad())            // dW (out, in) += gᵀ x
        MapR<T>(wv.grad_buffer().template data<T>(), out, in).noalias() +=
            gm.transpose() * MapRC<T>(xc.data<T>(), N, in);
      if (bv.defined() && bv.requires_grad()) {  // db (out) += Σ_n g
        T* db = bv.grad_buffer().template data<T>();
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
