// Winograd F(m×m, 3×3) convolution, forward and weight gradient (the math: cpu/winograd.h).
//
// Layout. Tiles are numbered t = (n·TH + th)·TW + tw over the images of one chunk (TH×TW tiles
// of m×m outputs per image; the last row and column of tiles may hang over the output edge: their
// inputs past the image are zeros and their outputs past the edge are dropped). The α² planes of
// the transformed data are stored ξ-major so that each product reads plain row-major matrices:
//   V[ξ][c][t], M[ξ][k][t] (forward), Z[ξ][k][t] and dU[ξ][k][c] (weight gradient);
// U[ξ] (K, C) is written straight into the micro-kernel's packed layout (PackedA), never unpacked.
// Each 2-D transform is two passes of a 1-D one, each pass vectorised across every tile of a
// plane at once (eight lanes per vector), after a gather of the tiles' inputs into contiguous
// lanes.
//
// Threads. One OpenMP region per call: the input and weight transforms split planes and filter
// slivers, the α² products run one per thread at a time (each single-threaded: no barrier inside,
// and the same bits for any thread count), the output transform splits output planes. Batches run
// in chunks of whole images whose transformed data stays near 8 MB (in the last-level cache; see
// tiling()); the weight gradient adds the chunks' dU in chunk order: deterministic too.
#include "tensor/kernels/cpu/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "tensor/check.h"
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
  template <class V> static void input(const V* d, V* t) {
    t[0] = d[0] - d[2];
    t[1] = d[1] + d[2];
    t[2] = d[2] - d[1];
    t[3] = d[1] - d[3];
  }
  template <class V> static void output(const V* v, V* o) {
    o[0] = v[0] + v[1] + v[2];
    o[1] = v[1] - v[2] - v[3];
  }
  template <class V> static void weight(const V* g, V* u) {
    u[0] = g[0];
    u[1] = 0.5f * (g[0] + g[1] + g[2]);
    u[2] = 0.5f * (g[0] - g[1] + g[2]);
    u[3] = g[2];
  }
  template <class V> static void output_adjoint(const V* y, V* z) {
    z[0] = y[0];
    z[1] = y[0] + y[1];
    z[2] = y[0] - y[1];
    z[3] = -y[1];
  }
  template <class V> static void weight_adjoint(const V* u, V* g) {
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
  template <class V> static void input(const V* d, V* t) {
    t[0] = 4.f * d[0] - 5.f * d[2] + d[4];
    t[1] = -4.f * (d[1] + d[2]) + d[3] + d[4];
    t[2] = 4.f * (d[1] - d[2]) - d[3] + d[4];
    t[3] = 2.f * (d[3] - d[1]) - d[2] + d[4];
    t[4] = 2.f * (d[1] - d[3]) - d[2] + d[4];
    t[5] = 4.f * d[1] - 5.f * d[3] + d[5];
  }
  template <class V> static void output(const V* v, V* o) {
    const V s12 = v[1] + v[2], d12 = v[1] - v[2], s34 = v[3] + v[4], d34 = v[3] - v[4];
    o[0] = v[0] + s12 + s34;
    o[1] = d12 + 2.f * d34;
    o[2] = s12 + 4.f * s34;
    o[3] = d12 + 8.f * d34 + v[5];
  }
  template <class V> static void weight(const V* g, V* u) {
    const V s02 = g[0] + g[2];
    u[0] = 0.25f * g[0];
    u[1] = -(s02 + g[1]) * (1.f / 6.f);
    u[2] = -(s02 - g[1]) * (1.f / 6.f);
    u[3] = g[0] * (1.f / 24.f) + g[1] * (1.f / 12.f) + g[2] * (1.f / 6.f);
    u[4] = g[0] * (1.f / 24.f) - g[1] * (1.f / 12.f) + g[2] * (1.f / 6.f);
    u[5] = g[2];
  }
  template <class V> static void output_adjoint(const V* y, V* z) {
    const V s02 = y[0] + y[2], s13 = y[1] + y[3];
    z[0] = y[0];
    z[1] = s02 + s13;
    z[2] = s02 - s13;
    const V e = y[0] + 4.f * y[2], f = 2.f * y[1] + 8.f * y[3];
    z[3] = e + f;
    z[4] = e - f;
    z[5] = y[3];
  }
  template <class V> static void weight_adjoint(const V* u, V* g) {
    g[0] = 0.25f * u[0] - (u[1] + u[2]) * (1.f / 6.f) + (u[3] + u[4]) * (1.f / 24.f);
    g[1] = (u[2] - u[1]) * (1.f / 6.f) + (u[3] - u[4]) * (1.f / 12.f);
    g[2] = (u[3] + u[4] - u[1] - u[2]) * (1.f / 6.f) + u[5];
  }
};

// Eight lanes in one vector (GCC's vector extension: AVX2 registers in the native build, pairs of
// SSE registers in the portable one); the transforms above are written once for float and V8.
// V8 values are passed and returned by value between inlined helpers: the portable build (no
// AVX) warns that such a function's ABI differs from an AVX build's (-Wpsabi), which cannot matter
// for functions of this file only, and passing by reference instead measured 15–25 % slower
// (the lane arrays then lived in memory, not registers).
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float V8 __attribute__((vector_size(32)));

inline V8 load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, V8 v) { std::memcpy(p, &v, sizeof v); }

// The transforms as function objects (lanes() inlines them, for float tails and V8 bodies).
template <int M> struct TxCall {
  struct input {
    template <class V> void operator()(const V* d, V* t) const { Tx<M>::input(d, t); }
  };
  struct output {
    template <class V> void operator()(const V* v, V* o) const { Tx<M>::output(v, o); }
  };
  struct output_adjoint {
    template <class V> void operator()(const V* y, V* z) const { Tx<M>::output_adjoint(y, z); }
  };
};

// out[o·os + l] = f(in[0·is + l], …, in[(NI−1)·is + l])[o] for the n lanes l: a 1-D transform on
// n tiles at once, eight per vector.
template <int NI, int NO, class F>
__attribute__((always_inline)) inline void lanes(F f, const float* in, int64_t is, float* out, int64_t os, int64_t n) {
  int64_t l = 0;
  for (; l + 8 <= n; l += 8) {
    V8 a[NI], b[NO];
    for (int i = 0; i < NI; ++i) a[i] = load8(in + i * is + l);
    f(a, b);
    for (int o = 0; o < NO; ++o) store8(out + o * os + l, b[o]);
  }
  for (; l < n; ++l) {
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

// Chunk sizes, measured on the 2-core machine (docs/performance.md): the transformed data of a
// chunk is written once and read once, so it should stay in the last-level cache (32 MB, shared):
// 8 MB chunks made C64 64×64 (batch 8) 25 % faster forward and 40 % faster for the weight
// gradient than one 38 MB chunk. The weight gradient re-reads and re-writes dU (α²·K·C floats,
// 38 MB for K = C = 512) once per chunk, so its chunks grow with dU.
template <int M> Tiling tiling(const Conv3x3Shape& s, bool weight_gradient) {
  constexpr int A = M + 2;
  Tiling t;
  t.th = (s.ho() + M - 1) / M;
  t.tw = (s.wo() + M - 1) / M;
  const int64_t per_image = int64_t(A) * A * (s.c + s.k) * t.th * t.tw * int64_t(sizeof(float));
  int64_t budget = s.chunk_bytes;
  if (budget <= 0) {
    budget = int64_t(8) << 20;
    if (weight_gradient) budget = std::max(budget, 4 * int64_t(A) * A * s.k * s.c * int64_t(sizeof(float)));
  }
  t.chunk = std::clamp<int64_t>(budget / std::max<int64_t>(1, per_image), 1, std::max<int64_t>(1, s.n));
  return t;
}

// Per-thread scratch of the plane transforms.
struct PlaneScratch {
  std::vector<float> phase, pass, row;
};

// V[ξ][c][t0 + l] for the tiles l = th·TW + tw of one input plane x_nc (H, W); v points at
// V[0][c][t0], ξ planes vs apart. Both passes run over every tile of the plane at once (long
// vectors even for 16×16 images): first the α×α inputs of each tile are gathered into
// phase[q][r][l] = d_l[r][q] (input row th·m + r − pad_h, column tw·m + q − pad_w; zero outside),
// then the row pass gives h[j][r][l] = (Bᵀ d_l[r])_j and the column pass V[(i, j)] = (Bᵀ h[j])_i.
// The gather splits each zero-padded input row once into its m phases, split[p][u] = row[u·m + p]
// (one strided copy per pixel); input q of tile tw is then split[q mod m][tw + q div m], so each
// (q, r, th) of phase is one contiguous copy of TW floats.
template <int M>
void input_plane(const Conv3x3Shape& s, const Tiling& tl, const float* x, float* v, int64_t vs, PlaneScratch& sc) {
  constexpr int A = M + 2;
  const int64_t TW = tl.tw, NT = tl.th * tl.tw, U = TW + 1, padded = U * M;
  sc.phase.resize(size_t(A * A * NT));
  sc.pass.resize(size_t(A * A * NT));
  sc.row.resize(size_t(padded + M * U));
  float* ph = sc.phase.data();
  float* rp = sc.row.data();            // the padded row: rp[u] = x[ih][u − pad_w], zero outside
  float* split = rp + padded;           // split[p·U + u] = rp[u·m + p]
  const int64_t lo = std::min(s.pad_w, padded), hi = std::clamp<int64_t>(s.pad_w + s.w, lo, padded);
  for (int64_t qr = 0; qr < tl.th * M + 2; ++qr) {  // padded row qr = input row qr − pad_h
    const int64_t ih = qr - s.pad_h;
    const bool inside = ih >= 0 && ih < s.h;
    if (inside) {
      std::fill(rp, rp + lo, 0.f);
      std::memcpy(rp + lo, x + ih * s.w + (lo - s.pad_w), size_t(hi - lo) * sizeof(float));
      std::fill(rp + hi, rp + padded, 0.f);
      for (int p = 0; p < M; ++p)
        for (int64_t u = 0; u < U; ++u) split[p * U + u] = rp[u * M + p];
    }
    // The tile rows that read padded row qr, as their row r = qr − th·m.
    for (int64_t th = std::max<int64_t>(0, (qr - A + M) / M); th < tl.th && th * M <= qr; ++th) {
      const int64_t r = qr - th * M;
      if (r >= A) continue;
      float* out = ph + r * NT + th * TW;  // + q·A·NT + tw
      // Plain loops, not memcpy: with 16×16 images a run is 4 floats, and a call per run costs more
      // than the copy.
      for (int q = 0; q < A; ++q) {
        float* o = out + q * A * NT;
        const float* src = split + (q % M) * U + q / M;
        if (inside)
          for (int64_t tw = 0; tw < TW; ++tw) o[tw] = src[tw];
        else
          for (int64_t tw = 0; tw < TW; ++tw) o[tw] = 0.f;
      }
    }
  }
  // Row pass over (r, l): inputs q = 0..α−1 are A·NT apart; outputs j likewise.
  lanes<A, A>(typename TxCall<M>::input(), ph, A * NT, sc.pass.data(), A * NT, A * NT);
  // Column pass over l, for each j: inputs r are NT apart.
  for (int j = 0; j < A; ++j) lanes<A, A>(typename TxCall<M>::input(), sc.pass.data() + j * A * NT, NT, v + j * vs, A * vs, NT);
}

// y_nk (Ho, Wo) [+]= Aᵀ M_l A (+ bias) for the tiles l of one output plane; mk points at
// M[0][k][t0], ξ planes ms apart. Column pass sm[j][r][l] = (Aᵀ M_l[·, j])_r, row pass
// o[c][r][l] = (Aᵀ sm[·][r][l])_c = y_l[r][c], then o is written into the plane (cut at the edges).
template <int M>
void output_plane(const Conv3x3Shape& s, const Tiling& tl, const float* mk, int64_t ms, float bias, float* y,
                  bool accumulate, bool relu, PlaneScratch& sc) {
  constexpr int A = M + 2;
  const int64_t TW = tl.tw, NT = tl.th * tl.tw, ho = s.ho(), wo = s.wo();
  sc.pass.resize(size_t(A * M * NT));
  sc.phase.resize(size_t(M * M * NT));
  float* sm = sc.pass.data();
  for (int j = 0; j < A; ++j) lanes<A, M>(typename TxCall<M>::output(), mk + j * ms, A * ms, sm + j * M * NT, NT, NT);
  float* o = sc.phase.data();
  lanes<A, M>(typename TxCall<M>::output(), sm, M * NT, o, M * NT, M * NT);
  for (int64_t th = 0; th < tl.th; ++th)
    for (int r = 0; r < M && th * M + r < ho; ++r) {
      float* yr = y + (th * M + r) * wo;
      const float* orow = o + r * NT + th * TW;  // + c·M·NT + tw
      // Whole tiles as an interleaving of M columns (vectorised); the last tile cut at the edge.
      const int64_t full = wo / M;
      if (accumulate) {
        for (int64_t tw = 0; tw < full; ++tw)
          for (int c = 0; c < M; ++c) yr[tw * M + c] += orow[c * M * NT + tw] + bias;
      } else {
        for (int64_t tw = 0; tw < full; ++tw)
          for (int c = 0; c < M; ++c) yr[tw * M + c] = orow[c * M * NT + tw] + bias;
      }
      for (int64_t ow = full * M; ow < wo; ++ow) {
        const float val = orow[(ow % M) * M * NT + ow / M] + bias;
        yr[ow] = accumulate ? yr[ow] + val : val;
      }
      if (relu)  // a second pass over the row while it is in L1 (keeps the loops above vectorised)
        for (int64_t ow = 0; ow < wo; ++ow) yr[ow] = std::max(yr[ow], 0.f);
    }
}

// Z[ξ][k][t0 + l] = (A dY_l Aᵀ)[ξ] for the tiles l of one output-gradient plane gy_nk (Ho, Wo),
// zero past the output edge; z points at Z[0][k][t0], ξ planes zs apart. Gather
// phase[c][r][l] = dY_l[r][c], row pass zr[j][r][l] = (A dY_l[r])_j, column pass Z[(i, j)] = (A zr[j])_i.
template <int M>
void gradient_plane(const Conv3x3Shape& s, const Tiling& tl, const float* gy, float* z, int64_t zs, PlaneScratch& sc) {
  constexpr int A = M + 2;
  const int64_t TW = tl.tw, NT = tl.th * tl.tw, ho = s.ho(), wo = s.wo();
  sc.phase.resize(size_t(M * M * NT));
  sc.pass.resize(size_t(A * M * NT));
  float* ph = sc.phase.data();
  for (int r = 0; r < M; ++r)
    for (int64_t th = 0; th < tl.th; ++th) {
      const int64_t oh = th * M + r;
      float* out = ph + r * NT + th * TW;  // + c·M·NT + tw
      if (oh >= ho) {
        for (int c = 0; c < M; ++c) std::fill(out + c * M * NT, out + c * M * NT + TW, 0.f);
        continue;
      }
      const float* row = gy + oh * wo;
      for (int64_t tw = 0; tw < TW; ++tw)
        for (int c = 0; c < M; ++c) {
          const int64_t ow = tw * M + c;
          out[c * M * NT + tw] = ow < wo ? row[ow] : 0.f;
        }
    }
  lanes<M, A>(typename TxCall<M>::output_adjoint(), ph, M * NT, sc.pass.data(), M * NT, M * NT);
  for (int j = 0; j < A; ++j)
    lanes<M, A>(typename TxCall<M>::output_adjoint(), sc.pass.data() + j * M * NT, NT, z + j * zs, A * zs, NT);
}

// u = G g Gᵀ (α×α, row-major) for a 3×3 filter g (row-major), or eight of them in vectors.
template <int M, class V> void weight_filters(const V* g, V* u /* [α·α] */) {
  constexpr int A = M + 2;
  V t[A][3], col[3], tc[A], row[3];
  for (int q = 0; q < 3; ++q) {  // t = G g (α×3), a column at a time
    col[0] = g[q], col[1] = g[3 + q], col[2] = g[6 + q];
    Tx<M>::weight(col, tc);
    for (int i = 0; i < A; ++i) t[i][q] = tc[i];
  }
  for (int i = 0; i < A; ++i) {  // U = t Gᵀ, a row at a time
    row[0] = t[i][0], row[1] = t[i][1], row[2] = t[i][2];
    Tx<M>::weight(row, u + i * A);
  }
}

// U[ξ] (K, C) written straight into the micro-kernel's packed layout (no unpacked U, no second
// pass): for the row sliver starting at k0 and each input channel c, the filters of its mr rows
// are transformed together, eight per vector, and each ξ gets mr contiguous values. Rows past K
// (the sliver's padding) get zero filters, hence zeros.
template <int M>
void weight_transform_packed(const Conv3x3Shape& s, const float* w, WinogradFilter filter, int64_t k0,
                             std::vector<PackedA>& packed) {
  constexpr int A = M + 2;
  constexpr int64_t CB = 16;  // input channels per block: the block's α² runs (16·mr floats each) go out together
  const int mr = packed[0].mr;
  const int64_t rows = std::min<int64_t>(mr, s.k - k0);
  alignas(32) float taps[9][8] = {};
  alignas(32) float out[A * A][CB * 8];  // out[ξ][(c − c0)·mr + i]: the sliver's layout for ξ
  for (int64_t c0 = 0; c0 < s.c; c0 += CB) {
    // A block stays inside one KC slice of the packed layout, where consecutive c are mr floats apart.
    const int64_t slice_end = (c0 / PackedA::kGemmKC + 1) * PackedA::kGemmKC;
    const int64_t c1 = std::min({s.c, c0 + CB, slice_end});
    for (int64_t c = c0; c < c1; ++c) {
      if (filter == WinogradFilter::Forward) {
        for (int64_t i = 0; i < rows; ++i)
          for (int q = 0; q < 9; ++q) taps[q][i] = w[((k0 + i) * s.c + c) * 9 + q];
      } else {  // w (C, K, 3, 3) turned 180°: the sliver's rows are 9·rows contiguous floats
        const float* src = w + (c * s.k + k0) * 9;
        for (int64_t i = 0; i < rows; ++i)
          for (int q = 0; q < 9; ++q) taps[q][i] = src[i * 9 + 8 - q];
      }
      V8 g[9], u[A * A];
      for (int q = 0; q < 9; ++q) g[q] = load8(taps[q]);
      weight_filters<M>(g, u);
      // mr is 6 (AVX2) or 8: constant-size copies (a copy of mr floats compiled to a call into
      // memmove per position: about 9 % of a batch-1 inference, measured).
      alignas(32) float lane[8];
      for (int x = 0; x < A * A; ++x) {
        store8(lane, u[x]);
        if (mr == 8)
          std::memcpy(out[x] + (c - c0) * 8, lane, 8 * sizeof(float));
        else
          std::memcpy(out[x] + (c - c0) * 6, lane, 6 * sizeof(float));
      }
    }
    // One contiguous run per ξ instead of α² scattered stores per channel (36 write streams at
    // once defeat the prefetchers: half of this function's time went to those stores, measured).
    const int64_t at = packed[0].offset(k0, c0);
    for (int x = 0; x < A * A; ++x) std::memcpy(packed[size_t(x)].data.get() + at, out[x], size_t((c1 - c0) * mr) * sizeof(float));
    c0 = c1 - CB;  // the loop adds CB: continue at c1
  }
}

// dg_l = Gᵀ dU_l G (3×3, row-major) from dU_l (α×α, row-major).
template <int M, class V> void weight_adjoint_filters(const V* du, V* dg) {
  constexpr int A = M + 2;
  V t[A][3], in[A], g[3];
  for (int i = 0; i < A; ++i) {  // t = dU G (α×3), a row at a time
    Tx<M>::weight_adjoint(du + i * A, g);
    t[i][0] = g[0], t[i][1] = g[1], t[i][2] = g[2];
  }
  for (int q = 0; q < 3; ++q) {  // dg = Gᵀ t, a column at a time
    for (int i = 0; i < A; ++i) in[i] = t[i][q];
    Tx<M>::weight_adjoint(in, g);
    for (int p = 0; p < 3; ++p) dg[3 * p + q] = g[p];
  }
}

// dw[9·l ..] += (Gᵀ dU_l G) for the filters l in [l0, l1), eight per vector.
template <int M> void weight_adjoint(const float* du, int64_t l0, int64_t l1, int64_t L, float* dw) {
  constexpr int A = M + 2;
  int64_t l = l0;
  for (; l + 8 <= l1; l += 8) {
    V8 in[A * A], dg[9];
    for (int x = 0; x < A * A; ++x) in[x] = load8(du + x * L + l);
    weight_adjoint_filters<M>(in, dg);
    alignas(32) float taps[9][8];
    for (int q = 0; q < 9; ++q) store8(taps[q], dg[q]);
    for (int j = 0; j < 8; ++j)
      for (int q = 0; q < 9; ++q) dw[9 * (l + j) + q] += taps[q][j];
  }
  for (; l < l1; ++l) {
    float in[A * A], dg[9];
    for (int x = 0; x < A * A; ++x) in[x] = du[x * L + l];
    weight_adjoint_filters<M>(in, dg);
    for (int q = 0; q < 9; ++q) dw[9 * l + q] += dg[q];
  }
}

// Uninitialised float buffer (every element is written before it is read).
std::unique_ptr<float[]> buffer(int64_t n) { return std::unique_ptr<float[]>(new float[size_t(std::max<int64_t>(1, n))]); }

// U[ξ] (K, C) for every ξ, allocated and packed for `kernels` (filled by weight_transform_packed).
std::vector<PackedA> packed_weights_alloc(int xi, const Conv3x3Shape& s, CpuKernels kernels) {
  std::vector<PackedA> packed(static_cast<size_t>(xi));
  for (PackedA& p : packed) p = packed_a_alloc(kernels, s.k, s.c);
  return packed;
}

// `prepared`: U from winograd_weights (then w is not read), or null to transform w here.
template <int M>
void forward_impl(const Conv3x3Shape& s, const float* x, const float* w, WinogradFilter filter,
                  const std::vector<PackedA>* prepared, const float* b, float* y, bool accumulate, bool relu,
                  CpuKernels kernels, int threads) {
  constexpr int A = M + 2, XI = A * A;
  const Tiling tl = tiling<M>(s, false);
  const int64_t C = s.c, K = s.k, per_image = tl.th * tl.tw, hw = s.h * s.w, howo = s.ho() * s.wo();
  const int64_t Tmax = tl.chunk * per_image;
  auto V = buffer(XI * C * Tmax), Mb = buffer(XI * K * Tmax);
  SM_CHECK(!prepared || (int(prepared->size()) == XI && (*prepared)[0].m == K && (*prepared)[0].k == C),
           "winograd_forward: prepared weights of another shape or tile size");
  std::vector<PackedA> own = prepared ? std::vector<PackedA>() : packed_weights_alloc(XI, s, kernels);
  const std::vector<PackedA>& packed = prepared ? *prepared : own;
  const int mr = packed[0].mr;
#pragma omp parallel num_threads(threads)
  {
    PlaneScratch sc;
    // U[ξ] = G g Gᵀ, packed for the micro-kernel, once for all chunks.
    if (!prepared) {
#pragma omp for schedule(static)
      for (int64_t k0 = 0; k0 < K; k0 += mr)
        weight_transform_packed<M>(s, w, filter, k0, own);
    }
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
                        y + (n0 + n) * K * howo + k * howo, accumulate, relu, sc);
      }
    }
  }
}

template <int M>
void dweight_impl(const Conv3x3Shape& s, const float* x, const float* gy, float* dw, CpuKernels kernels, int threads) {
  constexpr int A = M + 2, XI = A * A;
  const Tiling tl = tiling<M>(s, true);
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
  // Crossovers measured with bench/conv_algos (2 threads; docs/performance.md). The weights'
  // transform and packing cost α²·K·C, the products α²·K·C·T: with few tiles T (batch 1 at 16×16:
  // 16 tiles of F(4,3)) the transform dominates and the direct GEMM, which reads W once, wins. With
  // few channels the products are too thin to pay for the data transforms.
  if (s.c < 16 || s.k < 16) return 0;  // the `small` preset's 16-channel stages: F(4,3) 1.0–1.3× faster
  const int64_t t4 = s.n * ((s.ho() + 3) / 4) * ((s.wo() + 3) / 4);
  const int64_t t2 = s.n * ((s.ho() + 1) / 2) * ((s.wo() + 1) / 2);
  // F(4,3) from 64 tiles on: 1.2–2.9× faster than direct forward (C64…C512, batch 1–32).
  if (t4 >= 64) return 4;
  // Batch 1 at 16×16 (64 tiles of F(2,3)): F(2,3) was 1.1–1.6× faster than direct in most passes
  // (the 256→512 forward was slower in one run), F(4,3) slower (its transformed weights are 2.25×
  // larger).
  if (t2 >= 64) return 2;
  return 0;
}

WinogradWeights winograd_weights(int m, const Conv3x3Shape& s, const float* w, CpuKernels kernels, int threads,
                                 WinogradFilter filter) {
  WinogradWeights packed = packed_weights_alloc((m + 2) * (m + 2), s, kernels);
  const int mr = packed[0].mr;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k0 = 0; k0 < s.k; k0 += mr) {
    if (m == 4)
      weight_transform_packed<4>(s, w, filter, k0, packed);
    else
      weight_transform_packed<2>(s, w, filter, k0, packed);
  }
  return packed;
}

void winograd_forward(int m, const Conv3x3Shape& s, const float* x, const float* w, const float* b, float* y,
                      bool accumulate, CpuKernels kernels, int threads, WinogradFilter filter, bool relu,
                      const WinogradWeights* weights) {
  SM_CHECK(!(relu && accumulate), "winograd_forward: relu applies to an assigned output, not an accumulated one");
  if (m == 4)
    forward_impl<4>(s, x, w, filter, weights, b, y, accumulate, relu, kernels, threads);
  else
    forward_impl<2>(s, x, w, filter, weights, b, y, accumulate, relu, kernels, threads);
}

void winograd_dweight(int m, const Conv3x3Shape& s, const float* x, const float* gy, float* dw, CpuKernels kernels,
                      int threads) {
  if (m == 4)
    dweight_impl<4>(s, x, gy, dw, kernels, threads);
  else
    dweight_impl<2>(s, x, gy, dw, kernels, threads);
}

}  // namespace sm::cpu
