// CPU fully connected kernels with Eigen GEMM (contract: tensor/kernels/linear.h).
#include <Eigen/Core>

#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

namespace {
template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using MapRC = Eigen::Map<const MatR<T>>;
}  // namespace

// y (N, out) = x (N, in) Wᵀ + b
void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y) {
  const int64_t N = x.size(0), in = x.size(1), out = weight.size(0);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    MapR<T> ym(y.data<T>(), N, out);
    ym.noalias() = MapRC<T>(x.data<T>(), N, in) * MapRC<T>(weight.data<T>(), out, in).transpose();
    if (bias.defined()) ym.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bias.data<T>(), out);
  });
}

// dx (N, in) += g W;  dW (out, in) += gᵀ x;  db (out) += Σ_n g
void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor* dx, Tensor* dweight,
                     Tensor* dbias) {
  const int64_t N = x.size(0), in = x.size(1), out = weight.size(0);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    MapRC<T> gm(dy.data<T>(), N, out);  // (N, out)
    if (dx) MapR<T>(dx->data<T>(), N, in).noalias() += gm * MapRC<T>(weight.data<T>(), out, in);
    if (dweight) MapR<T>(dweight->data<T>(), out, in).noalias() += gm.transpose() * MapRC<T>(x.data<T>(), N, in);
    if (dbias) {
      T* db = dbias->data<T>();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < out; ++o) db[o] += gm(n, o);
    }
  });
}

}  // namespace sm::cpu
