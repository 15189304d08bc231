// Flat softmax and DSNT, forward and backward side by side (method.md §4).
#include "layers/dsnt.h"

#include <cmath>

#include "layers/cuda_glue.h"

namespace sm {

namespace {
void check_heatmap_shape(const char* op, const Tensor& t) {
  SM_CHECK(t.dim() == 4, op << " expects (N, C, H, W) heatmaps, got " << shape_str(t.shape()));
  SM_CHECK(t.size(2) > 0 && t.size(3) > 0, op << ": empty heatmap " << shape_str(t.shape()));
}
void check_heatmaps(const char* op, const Tensor& t) {
  check_heatmap_shape(op, t);
  check_cpu(op, t);
}

#ifdef SPINEMARK_CUDA
// The CUDA twins (cuda/dsnt.cu): float32 per cell, double accumulators, never half precision.
// Backward: flat_softmax_backward and dsnt_backward add into the input's gradient on the device.
Var flat_softmax_cuda(const Var& z) {
  Tensor zc = z.value().contiguous();
  const int64_t channels = zc.size(0) * zc.size(1), h = zc.size(2), w = zc.size(3);
  Tensor p = cuda_empty(zc.shape());  // (N, C, H, W)
  cuda::flat_softmax_forward(channels, h, w, cuda_f32_ptr("flat_softmax", zc), cuda_f32_ptr("flat_softmax", p));
  return var_make_result(p, {z}, "flat_softmax", [z, p, channels, h, w](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::flat_softmax_backward(channels, h, w, cuda_f32_ptr("flat_softmax", p), cuda_f32_ptr("flat_softmax", gc),
                                cuda_grad_ptr("flat_softmax", z));
  });
}

Var dsnt_cuda(const Var& p) {
  Tensor pc = p.value().contiguous();
  const int64_t n = pc.size(0), c = pc.size(1), h = pc.size(2), w = pc.size(3);
  Tensor mu = cuda_empty({n, c, 2});  // (N, C, 2)
  cuda::dsnt_forward(n * c, h, w, cuda_f32_ptr("dsnt", pc), cuda_f32_ptr("dsnt", mu));
  return var_make_result(mu, {p}, "dsnt", [p, n, c, h, w](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::dsnt_backward(n * c, h, w, cuda_f32_ptr("dsnt", gc), cuda_grad_ptr("dsnt", p));
  });
}
#endif
}  // namespace

// ---- flat softmax ------------------------------------------------------------------------------
// Forward, per channel of M = H·W cells: P_k = exp(Z_k - max Z) / Σ_l exp(Z_l - max Z).
// Backward: with G = ∂L/∂P, ∂L/∂Z_k = P_k (G_k - Σ_l P_l G_l)  (the softmax Jacobian
// diag(P) - P Pᵀ applied to G).
Var flat_softmax(const Var& z) {
  const Tensor& zv = z.value();
#ifdef SPINEMARK_CUDA
  if (zv.device() == Device::CUDA) {
    check_heatmap_shape("flat_softmax", zv);
    return flat_softmax_cuda(z);
  }
#endif
  check_heatmaps("flat_softmax", zv);
  const int64_t channels = zv.size(0) * zv.size(1), m = zv.size(2) * zv.size(3);
  Tensor p = Tensor::empty(zv.shape(), zv.dtype());  // (N, C, H, W)
  dispatch_float(zv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* zin = zv.contiguous().data<T>();
    T* out = p.data<T>();
#pragma omp parallel for if (channels * m > 32768)
    for (int64_t c = 0; c < channels; ++c) {
      const T* zc = zin + c * m;
      T* pc = out + c * m;
      T mx = zc[0];
      for (int64_t k = 1; k < m; ++k) mx = std::max(mx, zc[k]);
      T sum = 0;
      for (int64_t k = 0; k < m; ++k) sum += (pc[k] = std::exp(zc[k] - mx));
      const T inv = T(1) / sum;
      for (int64_t k = 0; k < m; ++k) pc[k] *= inv;
    }
  });
  return var_make_result(p, {z}, "flat_softmax", [z, p, channels, m](const Tensor& g) mutable {
    Tensor dz = Tensor::empty(p.shape(), p.dtype());
    dispatch_float(p.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* pp = p.data<T>();
      const T* gg = g.contiguous().data<T>();
      T* d = dz.data<T>();
      for (int64_t c = 0; c < channels; ++c) {
        const T* pc = pp + c * m;
        const T* gc = gg + c * m;
        T dot = 0;  // Σ_l P_l G_l
        for (int64_t k = 0; k < m; ++k) dot += pc[k] * gc[k];
        for (int64_t k = 0; k < m; ++k) d[c * m + k] = pc[k] * (gc[k] - dot);
      }
    });
    z.grad_accumulate(dz);
  });
}

// ---- DSNT ---------------------------------------------------------------------------------------
// Forward: μx = Σ_ij P_ij x_j, μy = Σ_ij P_ij y_i on pixel-centre grids in (-1, 1).
// Backward: ∂L/∂P_ij = g_x x_j + g_y y_i with g = ∂L/∂μ (the expectation is linear in P).
Var dsnt(const Var& p) {
  const Tensor& pv = p.value();
#ifdef SPINEMARK_CUDA
  if (pv.device() == Device::CUDA) {
    check_heatmap_shape("dsnt", pv);
    return dsnt_cuda(p);
  }
#endif
  check_heatmaps("dsnt", pv);
  const int64_t n = pv.size(0), c = pv.size(1), h = pv.size(2), w = pv.size(3);
  Tensor mu = Tensor::empty({n, c, 2}, pv.dtype());  // (N, C, 2)
  dispatch_float(pv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pp = pv.contiguous().data<T>();
    T* out = mu.data<T>();
    for (int64_t ch = 0; ch < n * c; ++ch) {
      const T* pc = pp + ch * h * w;
      T sx = 0, sy = 0;
      for (int64_t i = 0; i < h; ++i) {
        const T yi = T(2 * i + 1) / T(h) - T(1);
        T row = 0;
        for (int64_t j = 0; j < w; ++j) {
          const T xj = T(2 * j + 1) / T(w) - T(1);
          sx += pc[i * w + j] * xj;
          row += pc[i * w + j];
        }
        sy += row * yi;
      }
      out[2 * ch] = sx;
      out[2 * ch + 1] = sy;
    }
  });
  return var_make_result(mu, {p}, "dsnt", [p, n, c, h, w](const Tensor& g) mutable {
    Tensor dp = Tensor::empty({n, c, h, w}, g.dtype());
    dispatch_float(g.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* gg = g.contiguous().data<T>();
      T* d = dp.data<T>();
      for (int64_t ch = 0; ch < n * c; ++ch) {
        const T gx = gg[2 * ch], gy = gg[2 * ch + 1];
        for (int64_t i = 0; i < h; ++i) {
          const T yi = T(2 * i + 1) / T(h) - T(1);
          for (int64_t j = 0; j < w; ++j) d[(ch * h + i) * w + j] = gx * (T(2 * j + 1) / T(w) - T(1)) + gy * yi;
        }
      }
    });
    p.grad_accumulate(dp);
  });
}

// ---- Gaussian targets and spread ----------------------------------------------------------------
// Q_ij ∝ exp(-((j - px)² + (i - py)²) / 2σ²) with (px, py) the target in heatmap pixels,
// normalised so that Σ Q = 1 over the map.
Tensor gaussian_heatmaps(const Tensor& centres, int64_t height, int64_t width, double sigma) {
  SM_CHECK(centres.dim() == 3 && centres.size(2) == 2, "gaussian_heatmaps expects (N, C, 2) centres, got " << shape_str(centres.shape()));
  SM_CHECK(sigma > 0, "gaussian_heatmaps: sigma must be positive, got " << sigma);
#ifdef SPINEMARK_CUDA
  if (centres.device() == Device::CUDA) {  // float32 on the device (cuda/dsnt.cu)
    SM_CHECK(height > 0 && width > 0, "gaussian_heatmaps: empty map " << height << "x" << width);
    Tensor cc = centres.contiguous();
    Tensor q = cuda_empty({centres.size(0), centres.size(1), height, width});  // (N, C, H, W)
    cuda::gaussian_heatmaps(centres.size(0) * centres.size(1), height, width, cuda_f32_ptr("gaussian_heatmaps", cc), sigma,
                            cuda_f32_ptr("gaussian_heatmaps", q));
    return q;
  }
#endif
  check_cpu("gaussian_heatmaps", centres);
  const int64_t n = centres.size(0), c = centres.size(1);
  Tensor q = Tensor::empty({n, c, height, width}, centres.dtype());
  dispatch_float(centres.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* ct = centres.contiguous().data<T>();
    T* out = q.data<T>();
    const double inv2s2 = 1.0 / (2.0 * sigma * sigma);
    for (int64_t ch = 0; ch < n * c; ++ch) {
      const double px = dsnt_denormalise(double(ct[2 * ch]), width);
      const double py = dsnt_denormalise(double(ct[2 * ch + 1]), height);
      T* qc = out + ch * height * width;
      double sum = 0;
      for (int64_t i = 0; i < height; ++i)
        for (int64_t j = 0; j < width; ++j) {
          double dx = double(j) - px, dy = double(i) - py;
          double v = std::exp(-(dx * dx + dy * dy) * inv2s2);
          qc[i * width + j] = T(v);
          sum += v;
        }
      // A target far outside the map underflows every cell: fall back to a uniform map.
      const bool degenerate = !(sum > 0);
      for (int64_t k = 0; k < height * width; ++k)
        qc[k] = degenerate ? T(1.0 / double(height * width)) : T(double(qc[k]) / sum);
    }
  });
  return q;
}

Tensor heatmap_spread(const Tensor& p) {
  check_heatmap_shape("heatmap_spread", p);  // any device: the maps are copied to the host below
  const int64_t n = p.size(0), c = p.size(1), h = p.size(2), w = p.size(3);
  Tensor out = Tensor::empty({n, c}, DType::F32);
  std::vector<double> v = p.to_vector_f64();
  for (int64_t ch = 0; ch < n * c; ++ch) {
    const double* pc = v.data() + ch * h * w;
    double mx = 0, my = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        mx += pc[i * w + j] * double(j);
        my += pc[i * w + j] * double(i);
      }
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        sxx += pc[i * w + j] * (double(j) - mx) * (double(j) - mx);
        syy += pc[i * w + j] * (double(i) - my) * (double(i) - my);
      }
    out.f32()[ch] = float(std::sqrt(sxx + syy));
  }
  return out;
}

}  // namespace sm
