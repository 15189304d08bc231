// CPU BatchNorm2d kernels (contract: tensor/kernels/batchnorm.h). Per channel c, with
// M = N·H·W values, x̂ = (x − μ)·s, s = 1/sqrt(σ² + eps), y = γ x̂ + β:
//   training (μ, σ² of the batch; σ² biased):
//     dγ += Σ g x̂,   dβ += Σ g,   dx += γ s (g − Σg/M − x̂ Σ(g x̂)/M)
//   eval (μ, σ² the running statistics, constants):
//     dγ += Σ g x̂,   dβ += Σ g,   dx += γ s g
// x̂ is recomputed in backward from x (which the graph keeps anyway) and the saved per-channel
// μ, s: nothing of the size of x is stored. Statistics and sums run in double, in a fixed order
// per channel; the saved μ and s are rounded to x's dtype (as on the GPU).
#include <cmath>
#include <vector>

#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

namespace {

struct Geom {
  int64_t n, c, hw;
  int64_t m() const { return n * hw; }
};
Geom geom_make(const kernels::BatchNormGeometry& g) { return {g.n, g.c, g.h * g.w}; }
constexpr int64_t kParallelMin = 1 << 15;

std::vector<double> values_or(const Tensor& t, int64_t c, double fallback) {
  return t.defined() ? t.to_vector_f64() : std::vector<double>(size_t(c), fallback);
}

// Per-channel mean and biased variance, two passes (stable).
template <class T> void channel_stats(const Geom& g, const T* x, std::vector<double>& mean, std::vector<double>& var) {
#pragma omp parallel for schedule(static) if (g.n * g.c * g.hw > kParallelMin)
  for (int64_t c = 0; c < g.c; ++c) {
    double s = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;  // (H*W)
      for (int64_t i = 0; i < g.hw; ++i) s += double(p[i]);
    }
    const double mu = s / double(g.m());
    double v = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        const double d = double(p[i]) - mu;
        v += d * d;
      }
    }
    mean[c] = mu;
    var[c] = v / double(g.m());
  }
}

// y = x · (γ s)[c] + (β − μ γ s)[c]
template <class T> void normalise(const Geom& g, const T* x, const std::vector<double>& mean,
                                  const std::vector<double>& invstd, const std::vector<double>& gamma,
                                  const std::vector<double>& beta, T* y) {
  std::vector<double> scale(g.c), shift(g.c);
  for (int64_t c = 0; c < g.c; ++c) {
    scale[c] = gamma[c] * invstd[c];
    shift[c] = beta[c] - mean[c] * scale[c];
  }
#pragma omp parallel for schedule(static) if (g.n * g.c * g.hw > kParallelMin)
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const int64_t c = nc % g.c;
    const T a = T(scale[c]), b = T(shift[c]);
    const T* p = x + nc * g.hw;
    T* q = y + nc * g.hw;
    for (int64_t i = 0; i < g.hw; ++i) q[i] = p[i] * a + b;
  }
}

void saved_store(const std::vector<double>& mean, const std::vector<double>& invstd, kernels::BatchNormSaved& saved) {
  dispatch_float(saved.mean.dtype(), [&](auto zero) {
    using T = decltype(zero);
    for (size_t c = 0; c < mean.size(); ++c) saved.mean.data<T>()[c] = T(mean[c]), saved.invstd.data<T>()[c] = T(invstd[c]);
  });
}

}  // namespace

void batchnorm_forward_train(const kernels::BatchNormGeometry& geometry, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, Tensor* running_mean, Tensor* running_var, double momentum, double eps,
                             Tensor& y, kernels::BatchNormSaved& saved) {
  const Geom g = geom_make(geometry);
  std::vector<double> mean(g.c), var(g.c), invstd(g.c);
  const std::vector<double> gamma = values_or(weight, g.c, 1.0), beta = values_or(bias, g.c, 0.0);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    channel_stats<T>(g, x.data<T>(), mean, var);
    const double unbias = double(g.m()) / double(g.m() - 1);
    if (running_mean) {
      T* rm = running_mean->data<T>();
      for (int64_t c = 0; c < g.c; ++c) rm[c] = T((1.0 - momentum) * double(rm[c]) + momentum * mean[c]);
    }
    if (running_var) {
      T* rv = running_var->data<T>();
      for (int64_t c = 0; c < g.c; ++c) rv[c] = T((1.0 - momentum) * double(rv[c]) + momentum * var[c] * unbias);
    }
    for (int64_t c = 0; c < g.c; ++c) invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    normalise<T>(g, x.data<T>(), mean, invstd, gamma, beta, y.data<T>());
  });
  saved_store(mean, invstd, saved);
}

void batchnorm_forward_eval(const kernels::BatchNormGeometry& geometry, const Tensor& x, const Tensor& weight,
                            const Tensor& bias, const Tensor& running_mean, const Tensor& running_var, double eps,
                            Tensor& y, kernels::BatchNormSaved* saved) {
  const Geom g = geom_make(geometry);
  std::vector<double> mean = running_mean.to_vector_f64(), var = running_var.to_vector_f64(), invstd(g.c);
  const std::vector<double> gamma = values_or(weight, g.c, 1.0), beta = values_or(bias, g.c, 0.0);
  for (int64_t c = 0; c < g.c; ++c) invstd[c] = 1.0 / std::sqrt(var[c] + eps);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    normalise<T>(g, x.data<T>(), mean, invstd, gamma, beta, y.data<T>());
  });
  if (saved) saved_store(mean, invstd, *saved);
}

void batchnorm_backward(const kernels::BatchNormGeometry& geometry, const Tensor& x, const Tensor& weight,
                        const kernels::BatchNormSaved& saved, const Tensor& dy, Tensor* dx, Tensor* dweight,
                        Tensor* dbias) {
  const Geom g = geom_make(geometry);
  const std::vector<double> gamma = values_or(weight, g.c, 1.0);
  const std::vector<double> mean = saved.mean.to_vector_f64(), invstd = saved.invstd.to_vector_f64();
  const bool training = saved.training;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    const T* gy = dy.data<T>();
    T* pdx = dx ? dx->data<T>() : nullptr;
    T* pdw = dweight ? dweight->data<T>() : nullptr;
    T* pdb = dbias ? dbias->data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (g.n * g.c * g.hw > kParallelMin)
    for (int64_t c = 0; c < g.c; ++c) {
      const double mu = mean[c], s = invstd[c];
      double sg = 0, sgx = 0;  // Σ g, Σ g x̂
      for (int64_t n = 0; n < g.n; ++n) {
        const T* p = xp + (n * g.c + c) * g.hw;
        const T* q = gy + (n * g.c + c) * g.hw;
        for (int64_t i = 0; i < g.hw; ++i) {
          sg += double(q[i]);
          sgx += double(q[i]) * (double(p[i]) - mu) * s;
        }
      }
      if (pdw) pdw[c] += T(sgx);
      if (pdb) pdb[c] += T(sg);
      if (!pdx) continue;
      const double k = gamma[c] * s;
      // training: dx = k (g − Σg/M − x̂ Σ(g x̂)/M) = k g − a (x − μ) − b; eval: dx = k g
      const double a = training ? k * sgx / double(g.m()) * s : 0.0;  // coefficient of (x − μ)
      const double b = training ? k * sg / double(g.m()) : 0.0;
      // dx += k·g − a·x + (a·μ − b)
      const T kt = T(k), at = T(a), c0 = T(a * mu - b);
      for (int64_t n = 0; n < g.n; ++n) {
        const T* p = xp + (n * g.c + c) * g.hw;
        const T* q = gy + (n * g.c + c) * g.hw;
        T* d = pdx + (n * g.c + c) * g.hw;
        for (int64_t i = 0; i < g.hw; ++i) d[i] += kt * q[i] - at * p[i] + c0;
      }
    }
  });
}

}  // namespace sm::cpu
