// SyncBatchNorm from the one-process BatchNorm kernels, on any device (batchnorm2d_sync.h).
// Per channel, with this rank's M_r = N_r·H·W values and the whole batch's M = Σ_r M_r:
//   forward
//     local statistics   μ_r, s_r = 1/sqrt(σ²_r + eps)        the training kernel on this rank's rows
//     reduce 1           Σ_r M_r μ_r and M  ->  μ
//     reduce 2           Σ (x − μ)² = Σ_r M_r (σ²_r + (μ_r − μ)²)  ->  σ² (biased), s = 1/sqrt(σ² + eps)
//                        (the parallel-variance identity: no second pass over x)
//     output             y = γ (x − μ) s + β                   the eval kernel with μ, σ² as its statistics
//   backward, g = ∂L/∂y, x̂ = (x − μ) s
//     local sums         G1_r = Σ g, G2_r = Σ g x̂             the eval backward's dβ and dγ
//     reduce 3           G1, G2 over the whole batch
//     dx                 γ s (g − G1/M − x̂ G2/M)
//                        = γ s g                              the eval backward's dx
//                          − a x + (a μ − b),  a = γ s² G2/M, b = γ s G1/M
//                        the last line a per-channel affine map of x: the eval kernel again, with
//                        statistics 0 and 1 − eps (so its 1/sqrt(var + eps) is 1), weight −a and
//                        bias a μ − b
//     dγ, dβ             += G2_r, G1_r (this rank's share; the trainer sums parameter gradients)
// Only C-sized vectors cross between the device and the host; the three reductions are those of
// the direct version, so every rank (CPU or GPU) calls the reducer the same number of times.
#include <cmath>
#include <vector>

#include "layers/batchnorm2d_sync.h"
#include "tensor/kernels/batchnorm.h"
#include "tensor/ops.h"

namespace sm {

namespace {

// A (C) tensor of `values` in `dtype` on `device`.
Tensor channel_tensor(const std::vector<double>& values, DType dtype, Device device) {
  return Tensor::from_vector({int64_t(values.size())}, values).to(dtype).to(device);
}

}  // namespace

Var batchnorm2d_sync_kernels(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                             const BatchNormParams& p, BatchStatsReducer& reducer) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "batchnorm2d_sync: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
  const kernels::BatchNormGeometry geo{xv.size(0), xv.size(1), xv.size(2), xv.size(3)};
  const int64_t c = geo.c;
  const DType dt = xv.dtype();
  const Device dev = xv.device();
  for (const Var* v : {&weight, &bias})
    if (v->defined())
      SM_CHECK(v->value().dim() == 1 && v->value().size(0) == c && v->value().dtype() == dt && v->value().device() == dev,
               "batchnorm2d_sync: weight/bias " << shape_str(v->shape()) << " must be (" << c << ") beside x");
  for (const Tensor* t : {running_mean, running_var})
    if (t) SM_CHECK(t->dim() == 1 && t->size(0) == c && t->dtype() == dt && t->device() == dev && t->is_contiguous(),
                    "batchnorm2d_sync: running statistic " << shape_str(t->shape()) << " must be (" << c << ") beside x");
  const Tensor xc = xv.contiguous();
  const Tensor wv = weight.defined() ? weight.value() : Tensor(), bv = bias.defined() ? bias.value() : Tensor();

  // This rank's statistics (its normalised output is not needed).
  Tensor scratch = Tensor::empty(xc.shape(), dt, dev);
  const kernels::BatchNormSaved local = kernels::batchnorm_forward_train(geo, xc, Tensor(), Tensor(), nullptr, nullptr, 0.0, p.eps, scratch);
  const std::vector<double> mu_r = local.mean.to_vector_f64(), s_r = local.invstd.to_vector_f64();
  const double m_r = double(geo.n * geo.h * geo.w);
  // Reduce 1: [M_r μ_r (C), M_r] -> [Σ x (C), M].
  std::vector<double> sums(size_t(c) + 1);
  for (int64_t k = 0; k < c; ++k) sums[size_t(k)] = m_r * mu_r[size_t(k)];
  sums[size_t(c)] = m_r;
  reducer.sum(sums.data(), int64_t(sums.size()));
  const double m = sums[size_t(c)];
  SM_CHECK(m > 1, "batchnorm2d_sync: training needs more than 1 value per channel over all processes");
  std::vector<double> mean(static_cast<size_t>(c)), var(static_cast<size_t>(c)), invstd(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) mean[size_t(k)] = sums[size_t(k)] / m;
  // Reduce 2: Σ (x − μ)² by the parallel-variance identity.
  for (int64_t k = 0; k < c; ++k) {
    const size_t i = size_t(k);
    const double var_r = 1.0 / (s_r[i] * s_r[i]) - p.eps, d = mu_r[i] - mean[i];
    var[i] = m_r * (std::max(var_r, 0.0) + d * d);
  }
  reducer.sum(var.data(), c);
  for (int64_t k = 0; k < c; ++k) {
    var[size_t(k)] /= m;
    invstd[size_t(k)] = 1.0 / std::sqrt(var[size_t(k)] + p.eps);
  }
  // Running statistics as PyTorch: r ← (1 − momentum) r + momentum · stat (unbiased variance).
  if (running_mean) {
    std::vector<double> r = running_mean->to_vector_f64();
    for (int64_t k = 0; k < c; ++k) r[size_t(k)] = (1.0 - p.momentum) * r[size_t(k)] + p.momentum * mean[size_t(k)];
    running_mean->copy_(channel_tensor(r, dt, dev));
  }
  if (running_var) {
    std::vector<double> r = running_var->to_vector_f64();
    for (int64_t k = 0; k < c; ++k) r[size_t(k)] = (1.0 - p.momentum) * r[size_t(k)] + p.momentum * var[size_t(k)] * m / (m - 1);
    running_var->copy_(channel_tensor(r, dt, dev));
  }
  // y = γ (x − μ) s + β.
  kernels::BatchNormSaved saved;
  saved.training = false;  // μ and s are constants of the backward below; the batch terms come from reduce 3
  saved.mean = channel_tensor(mean, dt, dev);
  saved.invstd = channel_tensor(invstd, dt, dev);
  Tensor y = Tensor::empty(xc.shape(), dt, dev);
  kernels::batchnorm_forward_eval(geo, xc, wv, bv, saved.mean, channel_tensor(var, dt, dev), p.eps, y, false);

  std::vector<Var> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  BatchStatsReducer* r = &reducer;  // outlives the step: the trainer installs it for the whole run
  return var_make_result(y, inputs, "batchnorm2d_sync", [x, weight, bias, xc, wv, geo, saved, mean, invstd, m, r](const Tensor& gy_in) {
    const Tensor gy = gy_in.contiguous();
    const int64_t c = geo.c;
    const DType dt = xc.dtype();
    const Device dev = xc.device();
    Tensor* dx = grad_target(x);
    Tensor* dw = grad_target(weight);
    Tensor* db = grad_target(bias);
    // One pass of the eval backward: local G1_r = Σ g (its dβ), G2_r = Σ g x̂ (its dγ), and
    // dx += γ s g (the part of dx that needs no batch sums).
    Tensor g1 = Tensor::zeros({c}, dt, dev), g2 = Tensor::zeros({c}, dt, dev);
    kernels::batchnorm_backward(geo, xc, wv, saved, gy, dx, &g2, &g1);
    if (dw) tensor_add_(*dw, g2);
    if (db) tensor_add_(*db, g1);
    // Reduce 3, on every process even where dx is not wanted (it is a collective).
    std::vector<double> sums = g1.to_vector_f64();
    const std::vector<double> g2_host = g2.to_vector_f64();
    sums.insert(sums.end(), g2_host.begin(), g2_host.end());
    r->sum(sums.data(), int64_t(sums.size()));
    if (!dx) return;
    // dx += − a x + (a μ − b), through the eval kernel as a per-channel affine map of x.
    const std::vector<double> gamma = wv.defined() ? wv.to_vector_f64() : std::vector<double>(size_t(c), 1.0);
    std::vector<double> slope(static_cast<size_t>(c)), offset(static_cast<size_t>(c));
    for (int64_t k = 0; k < c; ++k) {
      const size_t i = size_t(k);
      const double a = gamma[i] * invstd[i] * invstd[i] * sums[size_t(c) + i] / m, b = gamma[i] * invstd[i] * sums[i] / m;
      slope[i] = -a;
      offset[i] = a * mean[i] - b;
    }
    const double eps = 1e-5;  // any eps: the statistics 0 and 1 − eps make the kernel's divisor 1
    Tensor correction = Tensor::empty(xc.shape(), dt, dev);
    kernels::batchnorm_forward_eval(geo, xc, channel_tensor(slope, dt, dev), channel_tensor(offset, dt, dev),
                                    Tensor::zeros({c}, dt, dev), Tensor::full({c}, 1.0 - eps, dt, dev), eps, correction, false);
    tensor_add_(*dx, correction);
  });
}

}  // namespace sm
