// Elementwise ops and reductions on plain tensors (see ops.h). Reductions accumulate in double
// in a fixed order, so results are reproducible bit for bit.
#include "tensor/ops.h"

#include <cmath>

#include "tensor/kernels/elementwise.h"

namespace sm {

namespace {

template <class F> Tensor binary(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_shape(op, a, b);
  check_cpu(op, a);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  const Tensor ac = a.contiguous(), bc = b.contiguous();  // held: the pointers below read them
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = ac.data<T>();
    const T* y = bc.data<T>();
    T* o = out.data<T>();
    const int64_t n = a.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
  });
  return out;
}

}  // namespace

Tensor tensor_add(const Tensor& a, const Tensor& b) { return binary("tensor_add", a, b, [](auto x, auto y) { return x + y; }); }
Tensor tensor_sub(const Tensor& a, const Tensor& b) { return binary("tensor_sub", a, b, [](auto x, auto y) { return x - y; }); }
Tensor tensor_mul(const Tensor& a, const Tensor& b) { return binary("tensor_mul", a, b, [](auto x, auto y) { return x * y; }); }

Tensor tensor_scale(const Tensor& a, double s) {
  Tensor out = a.clone();
  tensor_scale_(out, s);
  return out;
}

// The in-place ops and sums run on any device through the kernel layer (autograd's gradient
// accumulation and the optimizers' gradient norm need them on the GPU too).
void tensor_axpy_(Tensor& dst, double alpha, const Tensor& src) {
  SM_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(),
           "tensor_axpy_: " << dst.str() << " += alpha * " << src.str());
  kernels::axpy(alpha, src.contiguous(), dst);
}

void tensor_add_(Tensor& dst, const Tensor& src) {
  SM_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(), "tensor_add_: " << dst.str() << " += " << src.str());
  kernels::axpy(1.0, src.contiguous(), dst);
}

void tensor_scale_(Tensor& dst, double s) { kernels::scale(s, dst); }

double tensor_sum(const Tensor& a) { return kernels::sum(a.contiguous()); }
double tensor_mean(const Tensor& a) { return a.numel() ? tensor_sum(a) / double(a.numel()) : 0.0; }
double tensor_sum_squares(const Tensor& a) { return kernels::sum_squares(a.contiguous()); }

double tensor_max_abs(const Tensor& a) {
  double m = 0.0;
  for (double v : a.to_vector_f64()) m = std::max(m, std::fabs(v));
  return m;
}

double tensor_dot(const Tensor& a, const Tensor& b) {
  SM_CHECK(a.numel() == b.numel(), "tensor_dot: " << a.str() << " . " << b.str());
  std::vector<double> x = a.to_vector_f64(), y = b.to_vector_f64();
  double acc = 0.0;
  for (size_t i = 0; i < x.size(); ++i) acc += x[i] * y[i];
  return acc;
}

double tensor_max_abs_diff(const Tensor& a, const Tensor& b) {
  SM_CHECK(a.numel() == b.numel(), "tensor_max_abs_diff: " << a.str() << " vs " << b.str());
  std::vector<double> x = a.to_vector_f64(), y = b.to_vector_f64();
  double m = 0.0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

bool tensor_all_finite(const Tensor& a) {
  for (double v : a.to_vector_f64())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace sm
