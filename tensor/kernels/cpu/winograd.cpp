// Winograd F(m×m, 3×3) convolution, forward and weight gradient (the math: cpu/winograd.h).
//
// Layout. Tiles are numbered t = (n·TH + th)·TW + tw over the images of one chunk (TH×TW tiles
// of m×m outputs per image; the last row and column of tiles may hang over the output edge: their
// inputs past the image are zeros and their outputs past the edge are dropped). The α² planes of
// the transformed data are stored ξ-major so that each product reads plain row-major matrices:
//   V[ξ][c][t], U[ξ][k][c], M[ξ][k][t] (forward), Z[ξ][k][t] and dU[ξ][k][c] (weight gradient).
// Each 2-D transform is two passes of a 1-D one, vectorised across the TW tiles of a tile row:
// a row pass on every input row of the image (each row transformed once, though consecutive tile
// rows share two of them), then a column pass per tile row whose lanes are contiguous.
//
// Threads. One OpenMP region per call: the input and weight transforms split planes and filters,
// the α² products run one per thread at a time (each single-threaded: no barrier inside, and the
// same bits for any thread count), the output transform splits output planes. Batches whose
// transformed data would exceed ~64 MB run in chunks of whole images (the weight gradient adds
// the chunks' dU in chunk order: deterministic too).
#include "tensor/kernels/cpu/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "tensor/kernels/cpu/gemm.h"

namespace sm::cpu {

namespace {

// The 1-D transforms of F(m, 3) as straight-line code (zeros and ones of the matrices left out).
// input: t = Bᵀ d (α ← α); output: o = Aᵀ v (m ← α); weight: u = G g (α ← 3); and, for the weight
// gradient, the adjoints output_adjoint: z = A y (α ← m) and weight_adjoint: g = Gᵀ u (3 ← α).
template <int M> struct Tx;

// F(2, 3), interpolation points 0, 1, −1, ∞:
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1].
template <> struct Tx<2> {
  static constexpr int A = 4;
  static void input(const float* d, float* t) {
    t[0] = d[0] - d[2];
    t[1] = d[1] + d[2];
    t[2] = d[2] - d[1];
    t[3] = d[1] - d[3];
  }
  static void output(const float* v, float* o) {
    o[0] = v[0] + v[1] + v[2];
    o[1] = v[1] - v[2] - v[3];
  }
  static void weight(const float* g, float* u) {
    u[0] = g[0];
    u[1] = 0.5f * (g[0] + g[1] + g[2]);
    u[2] = 0.5f * (g[0] - g[1] + g[2]);
    u[3] = g[2];
  }
  static void output_adjoint(const float* y, float* z) {
    z[0] = y[0];
    z[1] = y[0] + y[1];
    z[2] = y[0] - y[1];
    z[3] = -y[1];
  }
  static void weight_adjoint(const float* u, float* g) {
    g[0] = u[0] + 0.5f * (u[1] + u[2]);
    g[1] = 0.5f * (u[1] - u[2]);
    g[2] = 0.5f * (u[1] + u[2]) + u[3];
  }
};

// F(4, 3), interpolation points 0, ±1, ±2, ∞:
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
template <> struct Tx<4> {
  static constexpr int A = 6;
  static void input(const float* d, float* t) {
    t[0] = 4.f * d[0] - 5.f * d[2] + d[4];
    t[1] = -4.f * (d[1] + d[2]) + d[3] + d[4];
    t[2] = 4.f * (d[1] - d[2]) - d[3] + d[4];
    t[3] = 2.f * (d[3] - d[1]) - d[2] + d[4];
    t[4] = 2.f * (d[1] - d[3]) - d[2] + d[4];
    t[5] = 4.f * d[1] - 5.f * d[3] + d[5];
  }
  static void output(const float* v, float* o) {
    const float s12 = v[1] + v[2], d12 = v[1] - v[2], s34 = v[3] + v[4], d34 = v[3] - v[4];
    o[0] = v[0] + s12 + s34;
    o[1] = d12 + 2.f * d34;
    o[2] = s12 + 4.f * s34;
    o[3] = d12 + 8.f * d34 + v[5];
  }
  static void weight(const float* g, float* u) {
    const float s02 = g[0] + g[2];
    u[0] = 0.25f * g[0];
    u[1] = -(s02 + g[1]) * (1.f / 6.f);
    u[2] = -(s02 - g[1]) * (1.f / 6.f);
    u[3] = g[0] * (1.f / 24.f) + g[1] * (1.f / 12.f) + g[2] * (1.f / 6.f);
    u[4] = g[0] * (1.f / 24.f) - g[1] * (1.f / 12.f) + g[2] * (1.f / 6.f);
    u[5] = g[2];
  }
  static void output_adjoint(const float* y, float* z) {
    const float s02 = y[0] + y[2], s13 = y[1] + y[3];
    z[0] = y[0];
    z[1] = s02 + s13;
    z[2] = s02 - s13;
    const float e = y[0] + 4.f * y[2], f = 2.f * y[1] + 8.f * y[3];
    z[3] = e + f;
    z[4] = e - f;
    z[5] = y[3];
  }
  static void weight_adjoint(const float* u, float* g) {
    g[0] = 0.25f * u[0] - (u[1] + u[2]) * (1.f / 6.f) + (u[3] + u[4]) * (1.f / 24.f);
    g[1] = (u[2] - u[1]) * (1.f / 6.f) + (u[3] - u[4]) * (1.f / 12.f);
    g[2] = (u[3] + u[4] - u[1] - u[2]) * (1.f / 6.f) + u[5];
  }
};

// out[o·os + l] = f(in[0·is + l], …, in[(NI−1)·is + l])[o] for the n lanes l: a 1-D transform on
// n tiles at once (the compiler turns the lane loop into vector code).
template <int NI, int NO, class F>
inline void lanes(F f, const float* in, int64_t is, float* out, int64_t os, int64_t n) {
#pragma omp simd
  for (int64_t l = 0; l < n; ++l) {
    float a[NI], b[NO];
    for (int i = 0; i < NI; ++i) a[i] = in[i * is + l];
    f(a, b);
    for (int o = 0; o < NO; ++o) out[o * os + l] = b[o];
  }
}

// Tile counts and the chunk of images processed at once.
struct Tiling {
  int64_t th, tw;  // tiles per image: rows, columns
  int64_t chunk;   // images per chunk
};

template <int M> Tiling tiling(const Conv3x3Shape& s) {
  constexpr int A = M + 2;
  Tiling t;
  t.th = (s.ho() + M - 1) / M;
  t.tw = (s.wo() + M - 1) / M;
  // V and M (or Z) of one image: α²·(C + K)·TH·TW floats; a chunk stays under chunk_bytes.
  const int64_t per_image = int64_t(A) * A * (s.c + s.k) * t.th * t.tw * int64_t(sizeof(float));
  t.chunk = std::clamp<int64_t>(s.chunk_bytes / std::max<int64_t>(1, per_image), 1, std::max<int64_t>(1, s.n));
  return t;
}

// Per-thread scratch of the plane transforms.
struct PlaneScratch {
  std::vector<float> row, phase, rows, col;
};

// V[ξ][c][t0 + th·TW + tw] for every tile of one input plane x_nc (H, W); v points at
// V[0][c][t0], ξ planes vs apart.
template <int M>
void input_plane(const Conv3x3Shape& s, const Tiling& tl, const float* x, float* v, int64_t vs, PlaneScratch& sc) {
  constexpr int A = M + 2;
  const int64_t TW = tl.tw, nrows = tl.th * M + 2, rowlen = TW * M + 2;
  sc.row.resize(size_t(rowlen));
  sc.phase.resize(size_t(A * TW));
  sc.rows.resize(size_t(nrows * A * TW));
  // Row pass: hr[j][tw] = (Bᵀ d)_j of the α inputs tw·m + [0, α) of padded row q (input row q − pad).
  for (int64_t q = 0; q < nrows; ++q) {
    float* hr = sc.rows.data() + q * A * TW;
    const int64_t ih = q - s.pad_h;
    if (ih < 0 || ih >= s.h) {
      std::fill(hr, hr + A * TW, 0.f);
      continue;
    }
    float* rp = sc.row.data();  // rp[u] = x[ih][u − pad_w], zero outside the image
    const int64_t lo = std::min(s.pad_w, rowlen), hi = std::min(rowlen, s.pad_w + s.w);
    std::fill(rp, rp + lo, 0.f);
    std::memcpy(rp + lo, x + ih * s.w, size_t(hi - lo) * sizeof(float));
    std::fill(rp + hi, rp + rowlen, 0.f);
    for (int i = 0; i < A; ++i) {
      float* ph = sc.phase.data() + i * TW;
      for (int64_t tw = 0; tw < TW; ++tw) ph[tw] = rp[tw * M + i];
    }
    lanes<A, A>(Tx<M>::input, sc.phase.data(), TW, hr, TW, TW);
  }
  // Column pass: V[(i, j)] = (Bᵀ h_j)_i over the α rows th·m + [0, α).
  for (int64_t th = 0; th < tl.th; ++th)
    for (int j = 0; j < A; ++j)
      lanes<A, A>(Tx<M>::input, sc.rows.data() + (th * M) * A * TW + j * TW, A * TW, v + j * vs + th * TW, A * vs, TW);
}

// y_nk (Ho, Wo) [+]= Aᵀ M A (+ bias) for every tile of one output plane; mk points at
// M[0][k][t0], ξ planes ms apart.
template <int M>
void output_plane(const Conv3x3Shape& s, const Tiling& tl, const float* mk, int64_t ms, float bias, float* y,
                  bool accumulate, PlaneScratch& sc) {
  constexpr int A = M + 2;
  const int64_t TW = tl.tw, ho = s.ho(), wo = s.wo();
  sc.rows.resize(size_t(M * A * TW));
  sc.col.resize(size_t(M * TW));
  for (int64_t th = 0; th < tl.th; ++th) {
    // Column pass: srow[r][j][tw] = (Aᵀ M_{·j})_r.
    for (int j = 0; j < A; ++j)
      lanes<A, M>(Tx<M>::output, mk + j * ms + th * TW, A * ms, sc.rows.data() + j * TW, A * TW, TW);
    for (int r = 0; r < M && th * M + r < ho; ++r) {
      // Row pass: o[c][tw] = (Aᵀ s_r)_c, output pixel (th·m + r, tw·m + c).
      lanes<A, M>(Tx<M>::output, sc.rows.data() + r * A * TW, TW, sc.col.data(), TW, TW);
      float* yr = y + (th * M + r) * wo;
      const float* o = sc.col.data();
      if (accumulate)
        for (int64_t ow = 0; ow < wo; ++ow) yr[ow] += o[(ow % M) * TW + ow / M] + bias;
      else
        for (int64_t ow = 0; ow < wo; ++ow) yr[ow] = o[(ow % M) * TW + ow / M] + bias;
    }
  }
}

// Z[ξ][k][t0 + th·TW + tw] = (A dY Aᵀ)[ξ] for every tile of one output-gradient plane gy_nk
// (Ho, Wo), zero past the output edge; z points at Z[0][k][t0], ξ planes zs apart.
template <int M>
void gradient_plane(const Conv3x3Shape& s, const Tiling& tl, const float* gy, float* z, int64_t zs, PlaneScratch& sc) {
  constexpr int A = M + 2;
  const int64_t TW = tl.tw, ho = s.ho(), wo = s.wo(), rowlen = TW * M;
  sc.row.resize(size_t(rowlen));
  sc.phase.resize(size_t(M * TW));
  sc.rows.resize(size_t(M * A * TW));
  for (int64_t th = 0; th < tl.th; ++th) {
    // Row pass: zr[r][j][tw] = (A y)_j of the m gradients tw·m + [0, m) of output row th·m + r.
    for (int r = 0; r < M; ++r) {
      float* zr = sc.rows.data() + r * A * TW;
      const int64_t oh = th * M + r;
      if (oh >= ho) {
        std::fill(zr, zr + A * TW, 0.f);
        continue;
      }
      float* rp = sc.row.data();
      std::memcpy(rp, gy + oh * wo, size_t(wo) * sizeof(float));
      std::fill(rp + wo, rp + rowlen, 0.f);
      for (int c = 0; c < M; ++c) {
        float* ph = sc.phase.data() + c * TW;
        for (int64_t tw = 0; tw < TW; ++tw) ph[tw] = rp[tw * M + c];
      }
      lanes<M, A>(Tx<M>::output_adjoint, sc.phase.data(), TW, zr, TW, TW);
    }
    // Column pass: Z[(i, j)] = (A zr_{·j})_i.
    for (int j = 0; j < A; ++j)
      lanes<M, A>(Tx<M>::output_adjoint, sc.rows.data() + j * TW, A * TW, z + j * zs + th * TW, A * zs, TW);
  }
}

// U[ξ][l] = (G g_l Gᵀ)[ξ] for the filters l = k·C + c in [l0, l1), g_l = w[9·l .. 9·l + 9).
template <int M> void weight_transform(const float* w, int64_t l0, int64_t l1, float* u, int64_t L) {
  constexpr int A = M + 2;
#pragma omp simd
  for (int64_t l = l0; l < l1; ++l) {
    const float* g = w + 9 * l;
    float col[3], t[A][3], row[3], out[A];
    for (int q = 0; q < 3; ++q) {  // t = G g (α×3), a column at a time
      float tc[A];
      col[0] = g[q], col[1] = g[3 + q], col[2] = g[6 + q];
      Tx<M>::weight(col, tc);
      for (int i = 0; i < A; ++i) t[i][q] = tc[i];
    }
    for (int i = 0; i < A; ++i) {  // U = t Gᵀ, a row at a time
      row[0] = t[i][0], row[1] = t[i][1], row[2] = t[i][2];
      Tx<M>::weight(row, out);
      for (int j = 0; j < A; ++j) u[(i * A + j) * L + l] = out[j];
    }
  }
}

// dw[9·l ..] += (Gᵀ dU_l G) for the filters l in [l0, l1).
template <int M> void weight_adjoint(const float* du, int64_t l0, int64_t l1, int64_t L, float* dw) {
  constexpr int A = M + 2;
#pragma omp simd
  for (int64_t l = l0; l < l1; ++l) {
    float t[A][3], in[A], g[3];
    for (int i = 0; i < A; ++i) {  // t = dU G (α×3), a row at a time
      for (int j = 0; j < A; ++j) in[j] = du[(i * A + j) * L + l];
      Tx<M>::weight_adjoint(in, g);
      t[i][0] = g[0], t[i][1] = g[1], t[i][2] = g[2];
    }
    for (int q = 0; q < 3; ++q) {  // dg = Gᵀ t, a column at a time
      for (int i = 0; i < A; ++i) in[i] = t[i][q];
      Tx<M>::weight_adjoint(in, g);
      for (int p = 0; p < 3; ++p) dw[9 * l + 3 * p + q] += g[p];
    }
  }
}

// Uninitialised float buffer (every element is written before it is read).
std::unique_ptr<float[]> buffer(int64_t n) { return std::unique_ptr<float[]>(new float[size_t(std::max<int64_t>(1, n))]); }

template <int M>
void forward_impl(const Conv3x3Shape& s, const float* x, const float* w, const float* b, float* y, bool accumulate,
                  CpuKernels kernels, int threads) {
  constexpr int A = M + 2, XI = A * A;
  const Tiling tl = tiling<M>(s);
  const int64_t C = s.c, K = s.k, L = K * C, per_image = tl.th * tl.tw, hw = s.h * s.w, howo = s.ho() * s.wo();
  const int64_t Tmax = tl.chunk * per_image;
  auto U = buffer(XI * L), V = buffer(XI * C * Tmax), Mb = buffer(XI * K * Tmax);
  std::vector<PackedA> packed(XI);
#pragma omp parallel num_threads(threads)
  {
    PlaneScratch sc;
    // U, then each ξ's U packed for the micro-kernel once for all chunks.
    const int64_t lstep = 256;
#pragma omp for schedule(static)
    for (int64_t l0 = 0; l0 < L; l0 += lstep) weight_transform<M>(w, l0, std::min(L, l0 + lstep), U.get(), L);
#pragma omp for schedule(static)
    for (int xi = 0; xi < XI; ++xi) packed[size_t(xi)] = pack_a(kernels, K, C, MatRef{U.get() + xi * L, C, 1});
    for (int64_t n0 = 0; n0 < s.n; n0 += tl.chunk) {
      const int64_t nn = std::min(tl.chunk, s.n - n0), T = nn * per_image;
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < nn * C; ++nc) {
        const int64_t n = nc / C, c = nc % C;
        input_plane<M>(s, tl, x + (n0 + n) * C * hw + c * hw, V.get() + c * T + n * per_image, C * T, sc);
      }
#pragma omp for schedule(static)
      for (int xi = 0; xi < XI; ++xi)
        sgemm_packed(packed[size_t(xi)], T, b_packer(MatRef{V.get() + xi * C * T, T, 1}), Mb.get() + xi * K * T, T,
                     false, 1);
#pragma omp for schedule(static)
      for (int64_t nk = 0; nk < nn * K; ++nk) {
        const int64_t n = nk / K, k = nk % K;
        output_plane<M>(s, tl, Mb.get() + k * T + n * per_image, K * T, b ? b[k] : 0.f,
                        y + (n0 + n) * K * howo + k * howo, accumulate, sc);
      }
    }
  }
}

template <int M>
void dweight_impl(const Conv3x3Shape& s, const float* x, const float* gy, float* dw, CpuKernels kernels, int threads) {
  constexpr int A = M + 2, XI = A * A;
  const Tiling tl = tiling<M>(s);
  const int64_t C = s.c, K = s.k, L = K * C, per_image = tl.th * tl.tw, hw = s.h * s.w, howo = s.ho() * s.wo();
  const int64_t Tmax = tl.chunk * per_image;
  auto dU = buffer(XI * L), V = buffer(XI * C * Tmax), Z = buffer(XI * K * Tmax);
#pragma omp parallel num_threads(threads)
  {
    PlaneScratch sc;
    for (int64_t n0 = 0; n0 < s.n; n0 += tl.chunk) {
      const int64_t nn = std::min(tl.chunk, s.n - n0), T = nn * per_image;
#pragma omp for schedule(static) nowait
      for (int64_t nc = 0; nc < nn * C; ++nc) {
        const int64_t n = nc / C, c = nc % C;
        input_plane<M>(s, tl, x + (n0 + n) * C * hw + c * hw, V.get() + c * T + n * per_image, C * T, sc);
      }
#pragma omp for schedule(static)
      for (int64_t nk = 0; nk < nn * K; ++nk) {
        const int64_t n = nk / K, k = nk % K;
        gradient_plane<M>(s, tl, gy + (n0 + n) * K * howo + k * howo, Z.get() + k * T + n * per_image, K * T, sc);
      }
      // dU[ξ] (K, C) [+]= Z[ξ] (K, T) · V[ξ]ᵀ (T, C); V[ξ]ᵀ is V[ξ] read column-major.
#pragma omp for schedule(static)
      for (int xi = 0; xi < XI; ++xi) {
        const PackedA za = pack_a(kernels, K, T, MatRef{Z.get() + xi * K * T, T, 1});
        sgemm_packed(za, C, b_packer(MatRef{V.get() + xi * C * T, 1, T}), dU.get() + xi * L, C, n0 > 0, 1);
      }
    }
    const int64_t lstep = 256;
#pragma omp for schedule(static)
    for (int64_t l0 = 0; l0 < L; l0 += lstep) weight_adjoint<M>(dU.get(), l0, std::min(L, l0 + lstep), L, dw);
  }
}

}  // namespace

int winograd_tile(const Conv3x3Shape& s, ConvAlgo algo) {
  if (s.pad_h < 0 || s.pad_h > 2 || s.pad_w < 0 || s.pad_w > 2 || s.ho() < 1 || s.wo() < 1) return 0;
  switch (algo) {
    case ConvAlgo::Direct: return 0;
    case ConvAlgo::WinogradF2: return 2;
    case ConvAlgo::WinogradF4: return 4;
    case ConvAlgo::Auto: break;
  }
  // Measured crossovers (docs/performance.md): the transforms cost O((C + K)·T), the products
  // α²·K·C·T; with few channels the products are too thin to pay for the transforms, and with few
  // tiles the products' columns leave the micro-kernel's NR-wide slivers half empty.
  if (s.c < 32 || s.k < 32) return 0;
  const int64_t t4 = s.n * ((s.ho() + 3) / 4) * ((s.wo() + 3) / 4);
  const int64_t t2 = s.n * ((s.ho() + 1) / 2) * ((s.wo() + 1) / 2);
  if (t4 >= 64) return 4;
  if (t2 >= 64) return 2;
  return 0;
}

void winograd_forward(int m, const Conv3x3Shape& s, const float* x, const float* w, const float* b, float* y,
                      bool accumulate, CpuKernels kernels, int threads) {
  if (m == 4)
    forward_impl<4>(s, x, w, b, y, accumulate, kernels, threads);
  else
    forward_impl<2>(s, x, w, b, y, accumulate, kernels, threads);
}

void winograd_dweight(int m, const Conv3x3Shape& s, const float* x, const float* gy, float* dw, CpuKernels kernels,
                      int threads) {
  if (m == 4)
    dweight_impl<4>(s, x, gy, dw, kernels, threads);
  else
    dweight_impl<2>(s, x, gy, dw, kernels, threads);
}

}  // namespace sm::cpu
