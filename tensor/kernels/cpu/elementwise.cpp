// CPU elementwise kernels and reductions (contract: tensor/kernels/elementwise.h). Reductions
// accumulate in double in index order: reproducible bit for bit.
#include <algorithm>

#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 16;  // below this, a parallel region costs more than it saves
}

void relu_forward(const Tensor& x, Tensor& y) {
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* a = x.data<T>();
    T* o = y.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) o[i] = std::max(a[i], T(0));
  });
}

void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  dispatch_float(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *o = y.data<T>(), *g = dy.data<T>();
    T* d = dx.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) d[i] += o[i] > T(0) ? g[i] : T(0);
  });
}

void add_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *x = a.data<T>(), *z = b.data<T>();
    T* o = y.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) o[i] = x[i] + z[i];
  });
}

void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  dispatch_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *x = a.data<T>(), *z = b.data<T>();
    T* o = y.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) o[i] = std::max(x[i] + z[i], T(0));
  });
}

void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor* da, Tensor* db) {
  dispatch_float(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *o = y.data<T>(), *g = dy.data<T>();
    T* pa = da ? da->data<T>() : nullptr;
    T* pb = db ? db->data<T>() : nullptr;
    const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const T gi = o[i] > T(0) ? g[i] : T(0);  // out = max(a + b, 0): da = db = g [out > 0]
      if (pa) pa[i] += gi;
      if (pb) pb[i] += gi;
    }
  });
}

void axpy(double alpha, const Tensor& x, Tensor& y) {
  dispatch_float(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* s = x.data<T>();
    T* d = y.data<T>();
    const int64_t n = y.numel();
    const T al = T(alpha);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) d[i] += al * s[i];
  });
}

void scale(double alpha, Tensor& x) {
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* d = x.data<T>();
    const T f = T(alpha);
    for (int64_t i = 0, n = x.numel(); i < n; ++i) d[i] *= f;
  });
}

namespace {
template <class F> double reduce(const Tensor& x, F f) {
  double acc = 0.0;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* p = x.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) acc += f(double(p[i]));
  });
  return acc;
}
}  // namespace

double sum(const Tensor& x) { return reduce(x, [](double v) { return v; }); }
double sum_squares(const Tensor& x) { return reduce(x, [](double v) { return v * v; }); }

}  // namespace sm::cpu
