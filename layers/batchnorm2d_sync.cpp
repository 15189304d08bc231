// SyncBatchNorm (see batchnorm2d_sync.h): forward and backward side by side. Per channel c,
// over the M = Σ_r M_r values of every process r (M_r = N_r·H·W of its rows):
//   forward   μ = Σ_r Σ x / M                         (reduce 1: the sums and M_r)
//             σ² = Σ_r Σ (x − μ)² / M  (biased)       (reduce 2: two passes, as the one-process
//                                                      kernel, so that both round alike)
//             s = 1/sqrt(σ² + eps),  x̂ = (x − μ)·s,  y = γ x̂ + β
//             running: r_μ ← (1−m) r_μ + m μ,  r_σ² ← (1−m) r_σ² + m σ² M/(M−1)
//   backward  with g = ∂L/∂y and the sums over the WHOLE batch G1 = Σ_r Σ g, G2 = Σ_r Σ g x̂
//             (reduce 3), the one-process formula
//               dx += γ s (g − G1/M − x̂ G2/M)
//             and this process's share of the parameter gradients
//               dγ += Σ g x̂,   dβ += Σ g   (local sums: the trainer then sums every parameter
//                                            gradient over the processes, so using G1, G2 here
//                                            would count them N times)
// Three reductions of 2C + 1, C and 2C doubles per layer and step. Sums run in double in a fixed
// order; the reducer's sum is in rank order, so every process ends with identical statistics.
#include "layers/batchnorm2d_sync.h"

#include <cmath>
#include <vector>

#include "tensor/ops.h"

namespace sm {

namespace {

struct SyncGeom {
  int64_t n, c, hw;
};

std::vector<double> values_or(const Var& v, int64_t c, double fallback) {
  return v.defined() ? v.value().to_vector_f64() : std::vector<double>(size_t(c), fallback);
}

// Per-channel Σ x (C) of this process's rows.
template <class T> std::vector<double> channel_sums(const SyncGeom& g, const T* x) {
  std::vector<double> s(size_t(g.c), 0.0);
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;  // (H*W)
      for (int64_t i = 0; i < g.hw; ++i) s[size_t(c)] += double(p[i]);
    }
  return s;
}

// Per-channel Σ (x − μ)² (C) of this process's rows.
template <class T> std::vector<double> channel_square_sums(const SyncGeom& g, const T* x, const std::vector<double>& mean) {
  std::vector<double> s(size_t(g.c), 0.0);
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        const double d = double(p[i]) - mean[size_t(c)];
        s[size_t(c)] += d * d;
      }
    }
  return s;
}

}  // namespace

Var batchnorm2d_sync(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                     const BatchNormParams& p, BatchStatsReducer& reducer) {
  const Tensor& xv = x.value();
  if (xv.device() != Device::CPU) return batchnorm2d_sync_kernels(x, weight, bias, running_mean, running_var, p, reducer);
  SM_CHECK(xv.dim() == 4, "batchnorm2d_sync: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
  const SyncGeom g{xv.size(0), xv.size(1), xv.size(2) * xv.size(3)};
  for (const Var* v : {&weight, &bias})
    if (v->defined())
      SM_CHECK(v->value().dim() == 1 && v->value().size(0) == g.c && v->value().dtype() == xv.dtype(),
               "batchnorm2d_sync: weight/bias " << shape_str(v->shape()) << " must be (" << g.c << ")");
  for (const Tensor* t : {running_mean, running_var})
    if (t) SM_CHECK(t->dim() == 1 && t->size(0) == g.c && t->dtype() == xv.dtype() && t->is_contiguous(),
                    "batchnorm2d_sync: running statistic " << shape_str(t->shape()) << " must be (" << g.c << ")");
  const Tensor xc = xv.contiguous();
  const std::vector<double> gamma = values_or(weight, g.c, 1.0), beta = values_or(bias, g.c, 0.0);
  Tensor y = Tensor::empty(xc.shape(), xc.dtype());  // (N, C, H, W)
  std::vector<double> mean(size_t(g.c)), invstd(size_t(g.c));
  double m = 0;  // M, the values per channel over every process
  dispatch_float(xc.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = xc.data<T>();
    // Reduce 1: [Σx (C), M_r] -> [Σ_r Σx, M].
    std::vector<double> sums = channel_sums<T>(g, px);
    sums.push_back(double(g.n * g.hw));
    reducer.sum(sums.data(), int64_t(sums.size()));
    m = sums.back();
    SM_CHECK(m > 1, "batchnorm2d_sync: training needs more than 1 value per channel over all processes");
    for (int64_t c = 0; c < g.c; ++c) mean[size_t(c)] = sums[size_t(c)] / m;
    // Reduce 2: Σ (x − μ)² with the global μ.
    std::vector<double> var = channel_square_sums<T>(g, px, mean);
    reducer.sum(var.data(), g.c);
    for (int64_t c = 0; c < g.c; ++c) {
      var[size_t(c)] /= m;
      invstd[size_t(c)] = 1.0 / std::sqrt(var[size_t(c)] + p.eps);
    }
    if (running_mean)
      for (int64_t c = 0; c < g.c; ++c)
        running_mean->data<T>()[c] = T((1.0 - p.momentum) * double(running_mean->data<T>()[c]) + p.momentum * mean[size_t(c)]);
    if (running_var)
      for (int64_t c = 0; c < g.c; ++c)
        running_var->data<T>()[c] =
            T((1.0 - p.momentum) * double(running_var->data<T>()[c]) + p.momentum * var[size_t(c)] * m / (m - 1));
    // y = x (γ s) + (β − μ γ s), the coefficients rounded to T as the one-process kernel does.
    T* py = y.data<T>();
    for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
      const size_t c = size_t(nc % g.c);
      const double a = gamma[c] * invstd[c];
      const T at = T(a), bt = T(beta[c] - mean[c] * a);
      const T* p = px + nc * g.hw;
      T* q = py + nc * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) q[i] = p[i] * at + bt;
    }
  });

  std::vector<Var> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  BatchStatsReducer* r = &reducer;  // outlives the step: the trainer installs it for the whole run
  return var_make_result(y, inputs, "batchnorm2d_sync", [x, weight, bias, xc, g, gamma, mean, invstd, m, r](const Tensor& gy_in) {
    const Tensor gy = gy_in.contiguous();
    Tensor* dx = grad_target(x);
    Tensor* dw = grad_target(weight);
    Tensor* db = grad_target(bias);
    dispatch_float(xc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* px = xc.data<T>();
      const T* pg = gy.data<T>();
      // Local Σ g and Σ g x̂ per channel: [G1 (C), G2 (C)].
      std::vector<double> sums(size_t(2 * g.c), 0.0);
      for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
        const size_t c = size_t(nc % g.c);
        const T* p = px + nc * g.hw;
        const T* q = pg + nc * g.hw;
        double sg = 0, sgx = 0;  // Σ g, Σ g (x − μ) of this plane; × s below
        for (int64_t i = 0; i < g.hw; ++i) {
          sg += double(q[i]);
          sgx += double(q[i]) * (double(p[i]) - mean[c]);
        }
        sums[c] += sg;
        sums[size_t(g.c) + c] += sgx * invstd[c];
      }
      if (dw) for (int64_t c = 0; c < g.c; ++c) dw->data<T>()[c] += T(sums[size_t(g.c + c)]);
      if (db) for (int64_t c = 0; c < g.c; ++c) db->data<T>()[c] += T(sums[size_t(c)]);
      // Reduce 3, on every process even where dx is not wanted (it is a collective).
      r->sum(sums.data(), int64_t(sums.size()));
      if (!dx) return;
      // dx = k (g − G1/M − x̂ G2/M), k = γ s, x̂ = (x − μ) s, expanded as the one-process
      // kernel does: dx += k·g − a·x + (a·μ − b), a = k s G2/M, b = k G1/M.
      T* pdx = dx->data<T>();
      for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
        const size_t c = size_t(nc % g.c);
        const double k = gamma[c] * invstd[c], a = k * invstd[c] * sums[size_t(g.c) + c] / m, b = k * sums[c] / m;
        const T kt = T(k), at = T(a), c0 = T(a * mean[c] - b);
        const T* p = px + nc * g.hw;
        const T* q = pg + nc * g.hw;
        T* d = pdx + nc * g.hw;
        for (int64_t i = 0; i < g.hw; ++i) d[i] += kt * q[i] - at * p[i] + c0;
      }
    });
  });
}

}  // namespace sm
