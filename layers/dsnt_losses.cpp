// DSNT losses, forward and backward side by side (method.md §4). Heatmap losses compute in
// double internally (maps are small) and return the input's dtype.
#include "layers/dsnt_losses.h"

#include <cmath>
#include <vector>

#include "layers/cuda_glue.h"
#include "layers/dsnt.h"

namespace sm {

namespace {

// Per-landmark weights w_c = mask_c / Σ mask (0 everywhere when nothing is visible).
std::vector<double> landmark_weights(const char* op, const Tensor& mask, int64_t n, int64_t c) {
  std::vector<double> w(size_t(n * c), 1.0);
  if (mask.defined()) {
    SM_CHECK(mask.shape() == Shape({n, c}), op << ": mask must be " << shape_str({n, c}) << ", got " << shape_str(mask.shape()));
    w = mask.to_vector_f64();
  }
  double k = 0;
  for (double v : w) k += v;
  for (double& v : w) v = k > 0 ? v / k : 0.0;
  return w;
}

Tensor tensor_from_doubles(const Shape& shape, const std::vector<double>& v, DType dtype) {
  return Tensor::from_vector(shape, v).to(dtype);
}

// L = Σ_c w_c f(P_c, Q_c). `value(p, q, m)` is f for one channel of m cells; `grad(p, q, m, out)`
// writes ∂f/∂P_c. Q may be absent (then q == nullptr).
template <class Value, class Grad>
Var heatmap_loss(const char* op, const Var& p, const Tensor& q, const Tensor& mask, Value value, Grad grad) {
  const Tensor& pv = p.value();
  SM_CHECK(pv.dim() == 4, op << " expects (N, C, H, W) heatmaps, got " << shape_str(pv.shape()));
  const int64_t n = pv.size(0), c = pv.size(1), m = pv.size(2) * pv.size(3);
  std::vector<double> w = landmark_weights(op, mask, n, c);
  std::vector<double> pd = pv.to_vector_f64();
  std::vector<double> qd = q.defined() ? q.to_vector_f64() : std::vector<double>();
  double loss = 0;
  for (int64_t ch = 0; ch < n * c; ++ch)
    if (w[size_t(ch)] != 0) loss += w[size_t(ch)] * value(&pd[size_t(ch * m)], qd.empty() ? nullptr : &qd[size_t(ch * m)], pv.size(2), pv.size(3));
  Tensor out = Tensor::scalar(loss, pv.dtype());
  return var_make_result(out, {p}, op, [p, w, pd = std::move(pd), qd = std::move(qd), grad, n, c, m](const Tensor& g) mutable {
    const double gl = g.item();
    std::vector<double> dp(size_t(n * c * m), 0.0);
    const int64_t h = p.value().size(2), wd = p.value().size(3);
    for (int64_t ch = 0; ch < n * c; ++ch) {
      if (w[size_t(ch)] == 0) continue;
      double* d = &dp[size_t(ch * m)];
      grad(&pd[size_t(ch * m)], qd.empty() ? nullptr : &qd[size_t(ch * m)], h, wd, d);
      for (int64_t k = 0; k < m; ++k) d[k] *= gl * w[size_t(ch)];
    }
    p.grad_accumulate(tensor_from_doubles(p.value().shape(), dp, p.value().dtype()));
  });
}

// KL(a ‖ b) = Σ a (log(a+ε) − log(b+ε)).
double kl_channel(const double* a, const double* b, int64_t m) {
  double s = 0;
  for (int64_t k = 0; k < m; ++k) s += a[k] * (std::log(a[k] + kDivergenceEps) - std::log(b[k] + kDivergenceEps));
  return s;
}

// Σ_ij P_ij (j, i) and the variances Σ P j² − μx², Σ P i² − μy² (pixel units).
void moments(const double* p, int64_t h, int64_t w, double& mx, double& my, double& vx, double& vy) {
  double sx = 0, sy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      const double v = p[i * w + j];
      sx += v * double(j);
      sy += v * double(i);
      sxx += v * double(j) * double(j);
      syy += v * double(i) * double(i);
    }
  mx = sx, my = sy, vx = sxx - sx * sx, vy = syy - sy * sy;
}

void check_targets(const char* op, const Var& p, const Tensor& target) {
  SM_CHECK(target.dim() == 3 && target.size(2) == 2 && p.value().dim() == 4 && target.size(0) == p.value().size(0) &&
               target.size(1) == p.value().size(1),
           op << ": targets " << shape_str(target.shape()) << " do not match heatmaps " << shape_str(p.value().shape()));
}

#ifdef SPINEMARK_CUDA
// ---- CUDA twins (cuda/dsnt.cu) ------------------------------------------------------------------
// The loss stays on the device (a () tensor) and its backward reads the upstream gradient there:
// no host round trip. Targets and masks given on the CPU are uploaded (float32) once per call.
Tensor mask_upload(const char* op, const Tensor& mask, int64_t n, int64_t c) {
  if (mask.defined())
    SM_CHECK(mask.shape() == Shape({n, c}), op << ": mask must be " << shape_str({n, c}) << ", got " << shape_str(mask.shape()));
  return cuda_upload_f32(op, mask);
}

Var euclidean_loss_cuda(const Var& mu, const Tensor& target, const Tensor& mask) {
  const char* op = "euclidean_loss";
  Tensor muc = mu.value().contiguous();
  Tensor t = cuda_upload_f32(op, target), m = mask_upload(op, mask, muc.size(0), muc.size(1));
  const int64_t channels = muc.size(0) * muc.size(1);
  Tensor loss = cuda_empty({});  // ()
  cuda::euclidean_loss_forward(channels, cuda_f32_ptr(op, muc), cuda_f32_ptr(op, t), cuda_f32_ptr_opt(op, m),
                               cuda_f32_ptr(op, loss));
  return var_make_result(loss, {mu}, op, [mu, muc, t, m, channels](const Tensor& g) {
    const char* op = "euclidean_loss";
    Tensor gc = g.contiguous();
    cuda::euclidean_loss_backward(channels, cuda_f32_ptr(op, muc), cuda_f32_ptr(op, t), cuda_f32_ptr_opt(op, m),
                                  cuda_f32_ptr(op, gc), cuda_grad_ptr(op, mu));
  });
}

enum class HeatmapLoss { JS, KL, Variance };

// JS / KL against Q = gaussian_heatmaps(target) (made on the device), or the variance term.
Var heatmap_loss_cuda(const char* op, HeatmapLoss kind, const Var& p, const Tensor& target, double sigma,
                      const Tensor& mask) {
  Tensor pc = p.value().contiguous();
  SM_CHECK(pc.dim() == 4, op << " expects (N, C, H, W) heatmaps, got " << shape_str(pc.shape()));
  const int64_t n = pc.size(0), c = pc.size(1), h = pc.size(2), w = pc.size(3);
  Tensor m = mask_upload(op, mask, n, c);
  Tensor q;  // (N, C, H, W), JS and KL only
  if (kind != HeatmapLoss::Variance) q = gaussian_heatmaps(cuda_upload_f32(op, target), h, w, sigma);
  Tensor loss = cuda_empty({});  // ()
  const float *pp = cuda_f32_ptr(op, pc), *mp = cuda_f32_ptr_opt(op, m);
  if (kind == HeatmapLoss::JS) cuda::js_forward(n * c, h, w, pp, cuda_f32_ptr(op, q), mp, cuda_f32_ptr(op, loss));
  if (kind == HeatmapLoss::KL) cuda::kl_forward(n * c, h, w, pp, cuda_f32_ptr(op, q), mp, cuda_f32_ptr(op, loss));
  if (kind == HeatmapLoss::Variance) cuda::variance_forward(n * c, h, w, pp, sigma, mp, cuda_f32_ptr(op, loss));
  return var_make_result(loss, {p}, op, [op, kind, p, pc, q, m, sigma, n, c, h, w](const Tensor& g) {
    Tensor gc = g.contiguous();
    const float *pp = cuda_f32_ptr(op, pc), *mp = cuda_f32_ptr_opt(op, m), *gp = cuda_f32_ptr(op, gc);
    float* dp = cuda_grad_ptr(op, p);
    if (kind == HeatmapLoss::JS) cuda::js_backward(n * c, h, w, pp, cuda_f32_ptr(op, q), mp, gp, dp);
    if (kind == HeatmapLoss::KL) cuda::kl_backward(n * c, h, w, pp, cuda_f32_ptr(op, q), mp, gp, dp);
    if (kind == HeatmapLoss::Variance) cuda::variance_backward(n * c, h, w, pp, sigma, mp, gp, dp);
  });
}
#endif

}  // namespace

// ---- Euclidean ----------------------------------------------------------------------------------
// L = Σ_c w_c ‖μ_c − t_c‖;  ∂L/∂μ_c = w_c (μ_c − t_c) / ‖μ_c − t_c‖ (0 at zero distance).
Var euclidean_loss(const Var& mu, const Tensor& target, const Tensor& mask) {
  const Tensor& mv = mu.value();
  SM_CHECK(mv.dim() == 3 && mv.size(2) == 2, "euclidean_loss expects (N, C, 2) coordinates, got " << shape_str(mv.shape()));
  SM_CHECK(target.shape() == mv.shape(), "euclidean_loss: target " << shape_str(target.shape()) << " vs prediction " << shape_str(mv.shape()));
#ifdef SPINEMARK_CUDA
  if (mv.device() == Device::CUDA) return euclidean_loss_cuda(mu, target, mask);
#endif
  const int64_t n = mv.size(0), c = mv.size(1);
  std::vector<double> w = landmark_weights("euclidean_loss", mask, n, c);
  std::vector<double> a = mv.to_vector_f64(), t = target.to_vector_f64();
  std::vector<double> dist(size_t(n * c));
  double loss = 0;
  for (int64_t k = 0; k < n * c; ++k) {
    const double dx = a[size_t(2 * k)] - t[size_t(2 * k)], dy = a[size_t(2 * k + 1)] - t[size_t(2 * k + 1)];
    dist[size_t(k)] = std::sqrt(dx * dx + dy * dy);
    loss += w[size_t(k)] * dist[size_t(k)];
  }
  return var_make_result(Tensor::scalar(loss, mv.dtype()), {mu}, "euclidean_loss",
                         [mu, w, a, t, dist](const Tensor& g) mutable {
                           const double gl = g.item();
                           std::vector<double> d(a.size(), 0.0);
                           for (size_t k = 0; k < dist.size(); ++k) {
                             if (w[k] == 0 || dist[k] == 0) continue;
                             const double s = gl * w[k] / dist[k];
                             d[2 * k] = s * (a[2 * k] - t[2 * k]);
                             d[2 * k + 1] = s * (a[2 * k + 1] - t[2 * k + 1]);
                           }
                           mu.grad_accumulate(tensor_from_doubles(mu.value().shape(), d, mu.value().dtype()));
                         });
}

// ---- Jensen–Shannon ---------------------------------------------------------------------------
// JS = ½ KL(P‖M) + ½ KL(Q‖M), M = (P+Q)/2. With Q fixed:
// ∂JS/∂P = ½ [log((P+ε)/(M+ε)) + P/(P+ε) − M/(M+ε)].
Var js_regularizer(const Var& p, const Tensor& target, double sigma, const Tensor& mask) {
  check_targets("js_regularizer", p, target);
#ifdef SPINEMARK_CUDA
  if (p.value().device() == Device::CUDA) return heatmap_loss_cuda("js_regularizer", HeatmapLoss::JS, p, target, sigma, mask);
#endif
  Tensor q = gaussian_heatmaps(target.to(DType::F64), p.value().size(2), p.value().size(3), sigma);
  constexpr double eps = kDivergenceEps;
  auto value = [](const double* pc, const double* qc, int64_t h, int64_t w) {
    const int64_t m = h * w;
    std::vector<double> mid(static_cast<size_t>(m));
    for (int64_t k = 0; k < m; ++k) mid[size_t(k)] = 0.5 * (pc[k] + qc[k]);
    return 0.5 * kl_channel(pc, mid.data(), m) + 0.5 * kl_channel(qc, mid.data(), m);
  };
  auto grad = [](const double* pc, const double* qc, int64_t h, int64_t w, double* d) {
    for (int64_t k = 0; k < h * w; ++k) {
      const double mid = 0.5 * (pc[k] + qc[k]);
      d[k] = 0.5 * (std::log((pc[k] + eps) / (mid + eps)) + pc[k] / (pc[k] + eps) - mid / (mid + eps));
    }
  };
  return heatmap_loss("js_regularizer", p, q, mask, value, grad);
}

// ---- Kullback–Leibler -------------------------------------------------------------------------
// KL(P‖Q) = Σ P (log(P+ε) − log(Q+ε));  ∂KL/∂P = log(P+ε) − log(Q+ε) + P/(P+ε).
Var kl_regularizer(const Var& p, const Tensor& target, double sigma, const Tensor& mask) {
  check_targets("kl_regularizer", p, target);
#ifdef SPINEMARK_CUDA
  if (p.value().device() == Device::CUDA) return heatmap_loss_cuda("kl_regularizer", HeatmapLoss::KL, p, target, sigma, mask);
#endif
  Tensor q = gaussian_heatmaps(target.to(DType::F64), p.value().size(2), p.value().size(3), sigma);
  constexpr double eps = kDivergenceEps;
  auto value = [](const double* pc, const double* qc, int64_t h, int64_t w) { return kl_channel(pc, qc, h * w); };
  auto grad = [](const double* pc, const double* qc, int64_t h, int64_t w, double* d) {
    for (int64_t k = 0; k < h * w; ++k) d[k] = std::log(pc[k] + eps) - std::log(qc[k] + eps) + pc[k] / (pc[k] + eps);
  };
  return heatmap_loss("kl_regularizer", p, q, mask, value, grad);
}

// ---- variance ---------------------------------------------------------------------------------
// R = (V_x − σ²)² + (V_y − σ²)² with V_x = Σ P j² − μx², μx = Σ P j (pixels; same for y).
// ∂V_x/∂P_ij = j² − 2 μx j, so ∂R/∂P_ij = 2(V_x − σ²)(j² − 2μx j) + 2(V_y − σ²)(i² − 2μy i).
Var variance_regularizer(const Var& p, double sigma, const Tensor& mask) {
#ifdef SPINEMARK_CUDA
  if (p.value().device() == Device::CUDA)
    return heatmap_loss_cuda("variance_regularizer", HeatmapLoss::Variance, p, Tensor(), sigma, mask);
#endif
  const double s2 = sigma * sigma;
  auto value = [s2](const double* pc, const double*, int64_t h, int64_t w) {
    double mx, my, vx, vy;
    moments(pc, h, w, mx, my, vx, vy);
    return (vx - s2) * (vx - s2) + (vy - s2) * (vy - s2);
  };
  auto grad = [s2](const double* pc, const double*, int64_t h, int64_t w, double* d) {
    double mx, my, vx, vy;
    moments(pc, h, w, mx, my, vx, vy);
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const double fj = double(j), fi = double(i);
        d[i * w + j] = 2 * (vx - s2) * (fj * fj - 2 * mx * fj) + 2 * (vy - s2) * (fi * fi - 2 * my * fi);
      }
  };
  return heatmap_loss("variance_regularizer", p, Tensor(), mask, value, grad);
}

// ---- MSE and L1 -------------------------------------------------------------------------------
// L = Σ_c w_c (1/D) Σ_d f(a_cd − t_cd): the mean over visible elements.
// MSE: f = e², f' = 2e.  L1: f = |e|, f' = sign(e) (0 at 0).
namespace {
template <class F, class DF>
Var elementwise_loss(const char* op, const Var& a, const Tensor& target, const Tensor& mask, F f, DF df) {
  const Tensor& av = a.value();
  check_cpu(op, av);  // MSE and L1 have no CUDA twin (DSNT training does not use them): fail clearly
  SM_CHECK(av.dim() == 3, op << " expects (N, C, D), got " << shape_str(av.shape()));
  SM_CHECK(target.shape() == av.shape(), op << ": target " << shape_str(target.shape()) << " vs prediction " << shape_str(av.shape()));
  const int64_t n = av.size(0), c = av.size(1), dd = av.size(2);
  std::vector<double> w = landmark_weights(op, mask, n, c);
  std::vector<double> x = av.to_vector_f64(), t = target.to_vector_f64();
  double loss = 0;
  for (int64_t k = 0; k < n * c * dd; ++k) loss += w[size_t(k / dd)] / double(dd) * f(x[size_t(k)] - t[size_t(k)]);
  return var_make_result(Tensor::scalar(loss, av.dtype()), {a}, op, [a, w, x, t, dd, df](const Tensor& g) mutable {
    const double gl = g.item();
    std::vector<double> d(x.size());
    for (size_t k = 0; k < x.size(); ++k) d[k] = gl * w[k / size_t(dd)] / double(dd) * df(x[k] - t[k]);
    a.grad_accumulate(tensor_from_doubles(a.value().shape(), d, a.value().dtype()));
  });
}
}  // namespace

Var mse_loss(const Var& a, const Tensor& target, const Tensor& mask) {
  return elementwise_loss("mse_loss", a, target, mask, [](double e) { return e * e; }, [](double e) { return 2 * e; });
}

Var l1_loss(const Var& a, const Tensor& target, const Tensor& mask) {
  return elementwise_loss(
      "l1_loss", a, target, mask, [](double e) { return std::fabs(e); }, [](double e) { return double((e > 0) - (e < 0)); });
}

}  // namespace sm
