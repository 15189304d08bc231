// Flat softmax, DSNT and the Gaussian targets (method.md §4): the graph nodes; the arithmetic,
// forward and backward side by side, is in tensor/kernels/dsnt.h (cpu/dsnt.cpp, cuda/dsnt.cu).
#include "layers/dsnt.h"

#include <cmath>

#include "tensor/kernels/dsnt.h"

namespace sm {

namespace {
void check_heatmap_shape(const char* op, const Tensor& t) {
  SM_CHECK(t.dim() == 4, op << " expects (N, C, H, W) heatmaps, got " << shape_str(t.shape()));
  SM_CHECK(t.size(2) > 0 && t.size(3) > 0, op << ": empty heatmap " << shape_str(t.shape()));
}
}  // namespace

// ---- flat softmax ------------------------------------------------------------------------------
// Forward, per channel of M = H·W cells: P_k = exp(Z_k − max Z) / Σ_l exp(Z_l − max Z).
// Backward: with G = ∂L/∂P, ∂L/∂Z_k = P_k (G_k − Σ_l P_l G_l)  (the softmax Jacobian
// diag(P) − P Pᵀ applied to G); it keeps only P.
Var flat_softmax(const Var& z) {
  check_heatmap_shape("flat_softmax", z.value());
  Tensor zc = z.value().contiguous();
  Tensor p = Tensor::empty(zc.shape(), zc.dtype(), zc.device());  // (N, C, H, W)
  kernels::flat_softmax_forward(zc, p);
  return var_make_result(p, {z}, "flat_softmax", [z, p](const Tensor& g) {
    kernels::flat_softmax_backward(p, g.contiguous(), z.grad_buffer());
  });
}

// ---- DSNT ---------------------------------------------------------------------------------------
// Forward: μx = Σ_ij P_ij x_j, μy = Σ_ij P_ij y_i on pixel-centre grids in (−1, 1).
// Backward: ∂L/∂P_ij = g_x x_j + g_y y_i with g = ∂L/∂μ (the expectation is linear in P): it
// keeps nothing but the sizes.
Var dsnt(const Var& p) {
  check_heatmap_shape("dsnt", p.value());
  Tensor pc = p.value().contiguous();
  Tensor mu = Tensor::empty({pc.size(0), pc.size(1), 2}, pc.dtype(), pc.device());  // (N, C, 2)
  kernels::dsnt_forward(pc, mu);
  return var_make_result(mu, {p}, "dsnt", [p](const Tensor& g) {
    kernels::dsnt_backward(g.contiguous(), p.grad_buffer());
  });
}

// ---- Gaussian targets and spread ----------------------------------------------------------------
Tensor gaussian_heatmaps(const Tensor& centres, int64_t height, int64_t width, double sigma) {
  SM_CHECK(centres.dim() == 3 && centres.size(2) == 2, "gaussian_heatmaps expects (N, C, 2) centres, got " << shape_str(centres.shape()));
  SM_CHECK(sigma > 0, "gaussian_heatmaps: sigma must be positive, got " << sigma);
  SM_CHECK(height > 0 && width > 0, "gaussian_heatmaps: empty map " << height << "x" << width);
  Tensor cc = centres.contiguous();
  Tensor q = Tensor::empty({cc.size(0), cc.size(1), height, width}, cc.dtype(), cc.device());  // (N, C, H, W)
  kernels::gaussian_heatmaps(cc, sigma, q);
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
