// Winograd convolution F(m×m, 3×3) for the float32 CPU path: the 3×3, stride-1, undilated
// convolutions of the ResNet backbones with fewer multiplies than the direct GEMM.
//
// The 1-D idea (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"): m
// outputs of a 3-tap correlation, y_r = Σ_q d_{r+q} g_q, from α = m + 2 inputs, need α
// multiplies instead of 3m when both operands are first mapped into a space where correlation is
// a pointwise product (evaluation at α points, then interpolation):
//   y = Aᵀ [ (G g) ⊙ (Bᵀ d) ]        Bᵀ (α×α), G (α×3), Aᵀ (m×α): fixed small matrices.
// Nested in 2-D for an α×α input tile d and a 3×3 filter g, one m×m output tile is
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A.
// Over channels the pointwise product becomes α² independent matrix products: with the tiles t
// of every image, U[ξ] = (G g_kc Gᵀ)[ξ] (K, C) and V[ξ] = (Bᵀ d_ct B)[ξ] (C, T),
//   M[ξ] (K, T) = U[ξ] · V[ξ]           for each of the α² positions ξ = (i, j) of the tile,
// then Y_kt = Aᵀ M_kt A. Multiplies per output pixel and (k, c) pair: α²/m² instead of 9:
// F(2,3) 16/4 = 4 (2.25× fewer), F(4,3) 36/16 = 2.25 (4× fewer). The transforms add work that
// grows with C·T and K·T, not K·C·T, so the gain holds while C and K are not tiny.
//
// Backward. The input gradient of a stride-1 conv is itself such a conv (cpu/conv2d.cpp turns it
// into one), so it comes through the forward. The weight gradient is the adjoint of U ↦ Y:
//   dU[ξ] (K, C) = Σ_t Z[ξ] (K, T) · V[ξ]ᵀ (T, C),   Z_kt = A dY_kt Aᵀ,   dg = Gᵀ dU G,
// one product per ξ whose reduction runs over every tile of the batch.
//
// Accuracy: F(2,3)'s matrices hold 0, ±1 and ±½ (as exact as the direct sum); F(4,3)'s hold up
// to 8 and 1/24, so its float32 rounding error is larger (measured in tests/test_winograd.cpp
// and docs/performance.md against the direct convolution in float64).
#pragma once
#include <cstdint>

#include <vector>

#include "tensor/kernels/context.h"
#include "tensor/kernels/conv_geometry.h"
#include "tensor/kernels/cpu/gemm.h"

namespace sm::cpu {

// A 3×3, stride-1, undilated convolution: x (N, C, H, W), w (K, C, 3, 3), y (N, K, Ho, Wo) with
// Ho = H + 2·pad_h − 2, Wo = W + 2·pad_w − 2 (0 ≤ pad ≤ 2).
struct Conv3x3Shape {
  int64_t n, c, h, w, k, pad_h, pad_w;
  // Transformed data held at once (V and M, or V and Z), in bytes: batches that need more run in
  // chunks of whole images. 0 = the measured default (winograd.cpp); the tests set it to cover the
  // chunking.
  int64_t chunk_bytes = 0;
  int64_t ho() const { return kernels::conv_out_size(h, 3, 1, pad_h, 1); }  // = h + 2·pad_h − 2
  int64_t wo() const { return kernels::conv_out_size(w, 3, 1, pad_w, 1); }
};

// The output tile size m (2 or 4) the convolution s should run with under `algo`, or 0 for the
// direct GEMM. Auto: where the measured crossovers (bench/conv_algos) say Winograd is faster; the
// same rule serves the forward, the input gradient (a forward conv on the transposed geometry)
// and the weight gradient.
int winograd_tile(const Conv3x3Shape& s, ConvAlgo algo);

// How the filters are stored: Forward = w (K, C, 3, 3), the conv's own; Transposed = w (C, K, 3, 3)
// read as w'[k][c][i][j] = w[c][k][2−i][2−j], the filter of the input gradient's transposed
// convolution (cpu/conv2d.cpp), read in place instead of materialised.
enum class WinogradFilter { Forward, Transposed };

// The transformed filters U[ξ] = G g Gᵀ (K, C) of every ξ, each packed for the micro-kernel of
// `kernels`: what winograd_forward computes first on every call. Inference keeps them between
// calls (kernels::Conv2dWeightCache) so that a batch-1 forward does not redo the transform (up to
// α²·K·C floats written: 16.8 MB for F(2,3) at K = C = 512) for a product that reads them once.
using WinogradWeights = std::vector<PackedA>;
WinogradWeights winograd_weights(int m, const Conv3x3Shape& s, const float* w, CpuKernels kernels, int threads,
                                 WinogradFilter filter = WinogradFilter::Forward);

// y (N, K, Ho, Wo) = (accumulate ? y : 0) + conv3x3(x, w) (+ b[k] when b is not null), then
// y = max(0, y) when relu (the fused activation of inference; not with accumulate). With
// `weights` (from winograd_weights for the same m, shape, filters and kernels) w is not read.
void winograd_forward(int m, const Conv3x3Shape& s, const float* x, const float* w, const float* b, float* y,
                      bool accumulate, CpuKernels kernels, int threads,
                      WinogradFilter filter = WinogradFilter::Forward, bool relu = false,
                      const WinogradWeights* weights = nullptr);

// dw (K, C, 3, 3) += Σ_n correlation of x_n with gy_n (N, K, Ho, Wo): the weight gradient.
void winograd_dweight(int m, const Conv3x3Shape& s, const float* x, const float* gy, float* dw, CpuKernels kernels,
                      int threads);

}  // namespace sm::cpu
