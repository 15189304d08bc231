// CPU DSNT kernels (contract: tensor/kernels/dsnt.h; method.md §4): flat softmax, the expected
// coordinates and the Gaussian targets, forward and backward side by side.
#include <algorithm>
#include <cmath>

#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

namespace {
constexpr int64_t kParallelMin = 32768;
// Normalised coordinate of pixel centre `i` along an axis of `size` cells: (2i+1)/size − 1.
template <class T> T centre(int64_t i, int64_t size) { return T(2 * i + 1) / T(size) - T(1); }
}  // namespace

// Per channel of M = H·W cells: P_k = exp(Z_k − max Z) / Σ_l exp(Z_l − max Z).
void flat_softmax_forward(const Tensor& z, Tensor& p) {
  const int64_t channels = z.size(0) * z.size(1), m = z.size(2) * z.size(3);
  dispatch_float(z.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* zin = z.data<T>();
    T* out = p.data<T>();
#pragma omp parallel for if (channels * m > kParallelMin)
    for (int64_t c = 0; c < channels; ++c) {
      const T* zc = zin + c * m;
      T* pc = out + c * m;
      const T mx = *std::max_element(zc, zc + m);
      T sum = 0;
      for (int64_t k = 0; k < m; ++k) sum += (pc[k] = std::exp(zc[k] - mx));
      const T inv = T(1) / sum;
      for (int64_t k = 0; k < m; ++k) pc[k] *= inv;
    }
  });
}

// With G = ∂L/∂P: ∂L/∂Z_k = P_k (G_k − Σ_l P_l G_l), added into dz in place.
void flat_softmax_backward(const Tensor& p, const Tensor& dp, Tensor& dz) {
  const int64_t channels = p.size(0) * p.size(1), m = p.size(2) * p.size(3);
  dispatch_float(p.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pp = p.data<T>();
    const T* gg = dp.data<T>();
    T* d = dz.data<T>();
#pragma omp parallel for if (channels * m > kParallelMin)
    for (int64_t c = 0; c < channels; ++c) {
      const T* pc = pp + c * m;
      const T* gc = gg + c * m;
      T dot = 0;  // Σ_l P_l G_l
      for (int64_t k = 0; k < m; ++k) dot += pc[k] * gc[k];
      for (int64_t k = 0; k < m; ++k) d[c * m + k] += pc[k] * (gc[k] - dot);
    }
  });
}

// μx = Σ_ij P_ij x_j, μy = Σ_ij P_ij y_i (row sums first: one multiply per row for y).
void dsnt_forward(const Tensor& p, Tensor& mu) {
  const int64_t channels = p.size(0) * p.size(1), h = p.size(2), w = p.size(3);
  dispatch_float(p.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pp = p.data<T>();
    T* out = mu.data<T>();
    for (int64_t ch = 0; ch < channels; ++ch) {
      const T* pc = pp + ch * h * w;
      T sx = 0, sy = 0;
      for (int64_t i = 0; i < h; ++i) {
        T row = 0;
        for (int64_t j = 0; j < w; ++j) {
          sx += pc[i * w + j] * centre<T>(j, w);
          row += pc[i * w + j];
        }
        sy += row * centre<T>(i, h);
      }
      out[2 * ch] = sx;
      out[2 * ch + 1] = sy;
    }
  });
}

// ∂L/∂P_ij = g_x x_j + g_y y_i (the expectation is linear in P), added into dp.
void dsnt_backward(const Tensor& dmu, Tensor& dp) {
  const int64_t channels = dp.size(0) * dp.size(1), h = dp.size(2), w = dp.size(3);
  dispatch_float(dp.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* gg = dmu.data<T>();
    T* d = dp.data<T>();
    for (int64_t ch = 0; ch < channels; ++ch) {
      const T gx = gg[2 * ch], gy = gg[2 * ch + 1];
      for (int64_t i = 0; i < h; ++i) {
        const T yi = centre<T>(i, h);
        for (int64_t j = 0; j < w; ++j) d[(ch * h + i) * w + j] += gx * centre<T>(j, w) + gy * yi;
      }
    }
  });
}

// Q_ij ∝ exp(−((j − px)² + (i − py)²) / 2σ²), (px, py) the centre in heatmap pixels
// (p = ((c + 1)·size − 1)/2), normalised so that Σ Q = 1; computed in double.
void gaussian_heatmaps(const Tensor& centres, double sigma, Tensor& q) {
  const int64_t channels = q.size(0) * q.size(1), height = q.size(2), width = q.size(3);
  const std::vector<double> ct = centres.to_vector_f64();
  dispatch_float(q.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* out = q.data<T>();
    const double inv2s2 = 1.0 / (2.0 * sigma * sigma);
    for (int64_t ch = 0; ch < channels; ++ch) {
      const double px = ((ct[2 * ch] + 1.0) * double(width) - 1.0) / 2.0;
      const double py = ((ct[2 * ch + 1] + 1.0) * double(height) - 1.0) / 2.0;
      T* qc = out + ch * height * width;
      std::vector<double> v(size_t(height * width));
      double sum = 0;
      for (int64_t i = 0; i < height; ++i)
        for (int64_t j = 0; j < width; ++j) {
          const double dx = double(j) - px, dy = double(i) - py;
          sum += (v[i * width + j] = std::exp(-(dx * dx + dy * dy) * inv2s2));
        }
      // A centre far outside the map underflows every cell: fall back to a uniform map.
      const bool degenerate = !(sum > 0);
      for (int64_t k = 0; k < height * width; ++k) qc[k] = degenerate ? T(1.0 / double(height * width)) : T(v[k] / sum);
    }
  });
}

}  // namespace sm::cpu
