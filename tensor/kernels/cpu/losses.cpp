// CPU loss kernels (contract: tensor/kernels/losses.h; method.md §4). Every term is computed in
// double (maps are small) and the result stored in the input's dtype; gradients are added into
// the input's gradient in place.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

namespace {

using kernels::kDivergenceEps;

// Per-landmark weights w_c = mask_c / Σ mask (0 everywhere when nothing is visible).
std::vector<double> landmark_weights(const Tensor& mask, int64_t channels) {
  std::vector<double> w = mask.defined() ? mask.to_vector_f64() : std::vector<double>(size_t(channels), 1.0);
  double k = 0;
  for (double v : w) k += v;
  for (double& v : w) v = k > 0 ? v / k : 0.0;
  return w;
}

void scalar_store(Tensor& loss, double value) {
  dispatch_float(loss.dtype(), [&](auto zero) { loss.data<decltype(zero)>()[0] = decltype(zero)(value); });
}

// d[k] += scale · g[k] for the channel's m cells of a tensor of dtype T.
void grad_add(Tensor& d, int64_t offset, const std::vector<double>& g, double scale) {
  dispatch_float(d.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = d.data<T>() + offset;
    for (size_t k = 0; k < g.size(); ++k) p[k] += T(scale * g[k]);
  });
}

// KL(a ‖ b) = Σ a (log(a+ε) − log(b+ε)).
double kl_channel(const double* a, const double* b, int64_t m) {
  double s = 0;
  for (int64_t k = 0; k < m; ++k) s += a[k] * (std::log(a[k] + kDivergenceEps) - std::log(b[k] + kDivergenceEps));
  return s;
}

// μ = Σ P (j, i) and the variances Σ P j² − μx², Σ P i² − μy² (pixel units).
void moments(const double* p, int64_t h, int64_t w, double& mx, double& my, double& vx, double& vy) {
  double sx = 0, sy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      const double v = p[i * w + j];
      sx += v * double(j), sy += v * double(i);
      sxx += v * double(j) * double(j), syy += v * double(i) * double(i);
    }
  mx = sx, my = sy, vx = sxx - sx * sx, vy = syy - sy * sy;
}

// The three heatmap losses as (value, gradient) of one channel of h × w cells.
enum class Heatmap { Js, Kl, Variance };

double heatmap_value(Heatmap kind, const double* p, const double* q, int64_t h, int64_t w, double sigma) {
  const int64_t m = h * w;
  if (kind == Heatmap::Kl) return kl_channel(p, q, m);
  if (kind == Heatmap::Js) {
    std::vector<double> mid(static_cast<size_t>(m));
    for (int64_t k = 0; k < m; ++k) mid[k] = 0.5 * (p[k] + q[k]);
    return 0.5 * kl_channel(p, mid.data(), m) + 0.5 * kl_channel(q, mid.data(), m);
  }
  double mx, my, vx, vy;
  moments(p, h, w, mx, my, vx, vy);
  const double s2 = sigma * sigma;
  return (vx - s2) * (vx - s2) + (vy - s2) * (vy - s2);
}

void heatmap_grad(Heatmap kind, const double* p, const double* q, int64_t h, int64_t w, double sigma, double* d) {
  constexpr double eps = kDivergenceEps;
  if (kind == Heatmap::Kl) {
    for (int64_t k = 0; k < h * w; ++k) d[k] = std::log(p[k] + eps) - std::log(q[k] + eps) + p[k] / (p[k] + eps);
  } else if (kind == Heatmap::Js) {
    for (int64_t k = 0; k < h * w; ++k) {
      const double mid = 0.5 * (p[k] + q[k]);
      d[k] = 0.5 * (std::log((p[k] + eps) / (mid + eps)) + p[k] / (p[k] + eps) - mid / (mid + eps));
    }
  } else {
    double mx, my, vx, vy;
    moments(p, h, w, mx, my, vx, vy);
    const double s2 = sigma * sigma;
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const double fj = double(j), fi = double(i);
        d[i * w + j] = 2 * (vx - s2) * (fj * fj - 2 * mx * fj) + 2 * (vy - s2) * (fi * fi - 2 * my * fi);
      }
  }
}

// L = Σ_c w_c f(P_c, Q_c); q may be undefined (the variance term).
void heatmap_forward(Heatmap kind, const Tensor& p, const Tensor& q, double sigma, const Tensor& mask, Tensor& loss) {
  const int64_t channels = p.size(0) * p.size(1), h = p.size(2), w = p.size(3), m = h * w;
  const std::vector<double> wt = landmark_weights(mask, channels);
  const std::vector<double> pd = p.to_vector_f64(), qd = q.defined() ? q.to_vector_f64() : std::vector<double>();
  double total = 0;
  for (int64_t ch = 0; ch < channels; ++ch)
    if (wt[ch] != 0) total += wt[ch] * heatmap_value(kind, &pd[ch * m], qd.empty() ? nullptr : &qd[ch * m], h, w, sigma);
  scalar_store(loss, total);
}

void heatmap_backward(Heatmap kind, const Tensor& p, const Tensor& q, double sigma, const Tensor& mask,
                      const Tensor& dloss, Tensor& dp) {
  const int64_t channels = p.size(0) * p.size(1), h = p.size(2), w = p.size(3), m = h * w;
  const std::vector<double> wt = landmark_weights(mask, channels);
  const std::vector<double> pd = p.to_vector_f64(), qd = q.defined() ? q.to_vector_f64() : std::vector<double>();
  const double gl = dloss.item();
  std::vector<double> d(static_cast<size_t>(m));
  for (int64_t ch = 0; ch < channels; ++ch) {
    if (wt[ch] == 0) continue;
    heatmap_grad(kind, &pd[ch * m], qd.empty() ? nullptr : &qd[ch * m], h, w, sigma, d.data());
    grad_add(dp, ch * m, d, gl * wt[ch]);
  }
}

}  // namespace

// L = Σ_c w_c ‖μ_c − t_c‖;  ∂L/∂μ_c = w_c (μ_c − t_c) / ‖μ_c − t_c‖ (0 at zero distance).
void euclidean_loss_forward(const Tensor& mu, const Tensor& target, const Tensor& mask, Tensor& loss) {
  const int64_t channels = mu.size(0) * mu.size(1);
  const std::vector<double> w = landmark_weights(mask, channels), a = mu.to_vector_f64(), t = target.to_vector_f64();
  double total = 0;
  for (int64_t k = 0; k < channels; ++k)
    total += w[k] * std::hypot(a[2 * k] - t[2 * k], a[2 * k + 1] - t[2 * k + 1]);
  scalar_store(loss, total);
}

void euclidean_loss_backward(const Tensor& mu, const Tensor& target, const Tensor& mask, const Tensor& dloss,
                             Tensor& dmu) {
  const int64_t channels = mu.size(0) * mu.size(1);
  const std::vector<double> w = landmark_weights(mask, channels), a = mu.to_vector_f64(), t = target.to_vector_f64();
  const double gl = dloss.item();
  std::vector<double> d(size_t(2 * channels), 0.0);
  for (int64_t k = 0; k < channels; ++k) {
    const double dx = a[2 * k] - t[2 * k], dy = a[2 * k + 1] - t[2 * k + 1];
    const double dist = std::sqrt(dx * dx + dy * dy);
    if (w[k] == 0 || dist == 0) continue;
    d[2 * k] = gl * w[k] / dist * dx;
    d[2 * k + 1] = gl * w[k] / dist * dy;
  }
  grad_add(dmu, 0, d, 1.0);
}

void js_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss) {
  heatmap_forward(Heatmap::Js, p, q, 0.0, mask, loss);
}
void js_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp) {
  heatmap_backward(Heatmap::Js, p, q, 0.0, mask, dloss, dp);
}
void kl_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss) {
  heatmap_forward(Heatmap::Kl, p, q, 0.0, mask, loss);
}
void kl_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp) {
  heatmap_backward(Heatmap::Kl, p, q, 0.0, mask, dloss, dp);
}
void variance_forward(const Tensor& p, double sigma, const Tensor& mask, Tensor& loss) {
  heatmap_forward(Heatmap::Variance, p, Tensor(), sigma, mask, loss);
}
void variance_backward(const Tensor& p, double sigma, const Tensor& mask, const Tensor& dloss, Tensor& dp) {
  heatmap_backward(Heatmap::Variance, p, Tensor(), sigma, mask, dloss, dp);
}

// L = Σ_c w_c (1/D) Σ_d e(a_cd − t_cd): the mean over the visible elements.
// MSE: e = x², e' = 2x.  L1: e = |x|, e' = sign(x) (0 at 0).
void elementwise_loss_forward(kernels::ElementwiseLoss kind, const Tensor& a, const Tensor& target, const Tensor& mask,
                              Tensor& loss) {
  const int64_t channels = a.size(0) * a.size(1), dd = a.numel() / std::max<int64_t>(1, channels);
  const std::vector<double> w = landmark_weights(mask, channels), x = a.to_vector_f64(), t = target.to_vector_f64();
  double total = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double e = x[k] - t[k];
    total += w[k / size_t(dd)] / double(dd) * (kind == kernels::ElementwiseLoss::Mse ? e * e : std::fabs(e));
  }
  scalar_store(loss, total);
}

void elementwise_loss_backward(kernels::ElementwiseLoss kind, const Tensor& a, const Tensor& target,
                               const Tensor& mask, const Tensor& dloss, Tensor& da) {
  const int64_t channels = a.size(0) * a.size(1), dd = a.numel() / std::max<int64_t>(1, channels);
  const std::vector<double> w = landmark_weights(mask, channels), x = a.to_vector_f64(), t = target.to_vector_f64();
  const double gl = dloss.item();
  std::vector<double> d(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    const double e = x[k] - t[k];
    const double de = kind == kernels::ElementwiseLoss::Mse ? 2 * e : double((e > 0) - (e < 0));
    d[k] = gl * w[k / size_t(dd)] / double(dd) * de;
  }
  grad_add(da, 0, d, 1.0);
}

}  // namespace sm::cpu
