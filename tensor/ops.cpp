// CPU elementwise ops and reductions (see ops.h). Reductions accumulate in double in index
// order, so results are reproducible bit for bit for a given thread count.
#include "tensor/ops.h"

#include <cmath>

#ifdef SPINEMARK_CUDA
#include "cuda/ops_cuda.h"
#endif

namespace sm {

namespace {

template <class F> Tensor binary(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_shape(op, a, b);
  check_cpu(op, a);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.contiguous().data<T>();
    const T* y = b.contiguous().data<T>();
    T* o = out.data<T>();
    const int64_t n = a.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
  });
  return out;
}

// CUDA twins of the in-place ops and sums (float32, contiguous): the gradient accumulation of
// autograd (Var::grad_accumulate -> tensor_add_) and the optimizers' grad norm need them.
#ifdef SPINEMARK_CUDA
bool on_cuda(const Tensor& t) { return t.device() == Device::CUDA; }
float* cuda_f32(const char* op, const Tensor& t) {
  SM_CHECK(t.dtype() == DType::F32 && t.is_contiguous(), op << ": CUDA tensors must be contiguous float32, got " << t.str());
  return static_cast<float*>(t.raw_data());
}
#endif

template <class F> double reduce(const char* op, const Tensor& a, F f) {
  check_cpu(op, a);
  double acc = 0.0;
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    Tensor c = a.contiguous();
    const T* x = c.data<T>();
    for (int64_t i = 0, n = c.numel(); i < n; ++i) acc += f(double(x[i]));
  });
  return acc;
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

void tensor_axpy_(Tensor& dst, double alpha, const Tensor& src) {
  SM_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(),
           "tensor_axpy_: " << dst.str() << " += alpha * " << src.str());
#ifdef SPINEMARK_CUDA
  if (on_cuda(dst) && on_cuda(src)) {
    cuda::axpy(dst.numel(), float(alpha), cuda_f32("tensor_axpy_", src), cuda_f32("tensor_axpy_", dst));
    return;
  }
#endif
  check_cpu("tensor_axpy_", dst);
  SM_CHECK(dst.is_contiguous() && src.is_contiguous(), "tensor_axpy_ needs contiguous tensors");
  dispatch_float(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    const T al = T(alpha);
    const int64_t n = dst.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] += al * s[i];
  });
}

void tensor_add_(Tensor& dst, const Tensor& src) {
  SM_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(), "tensor_add_: " << dst.str() << " += " << src.str());
#ifdef SPINEMARK_CUDA
  if (on_cuda(dst) && on_cuda(src)) {
    cuda::axpy(dst.numel(), 1.f, cuda_f32("tensor_add_", src), cuda_f32("tensor_add_", dst));
    return;
  }
#endif
  check_cpu("tensor_add_", dst);
  dispatch_float(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    const int64_t n = dst.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  });
}

void tensor_scale_(Tensor& dst, double s) {
#ifdef SPINEMARK_CUDA
  if (on_cuda(dst)) {
    cuda::scale(dst.numel(), float(s), cuda_f32("tensor_scale_", dst));
    return;
  }
#endif
  check_cpu("tensor_scale_", dst);
  dispatch_float(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* d = dst.data<T>();
    const T f = T(s);
    for (int64_t i = 0, n = dst.numel(); i < n; ++i) d[i] *= f;
  });
}

double tensor_sum(const Tensor& a) {
#ifdef SPINEMARK_CUDA
  if (on_cuda(a)) return cuda::sum(a.numel(), cuda_f32("tensor_sum", a));
#endif
  return reduce("tensor_sum", a, [](double x) { return x; });
}
double tensor_mean(const Tensor& a) { return a.numel() ? tensor_sum(a) / double(a.numel()) : 0.0; }
double tensor_sum_squares(const Tensor& a) {
#ifdef SPINEMARK_CUDA
  if (on_cuda(a)) return cuda::sum_squares(a.numel(), cuda_f32("tensor_sum_squares", a));
#endif
  return reduce("tensor_sum_squares", a, [](double x) { return x * x; });
}

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
