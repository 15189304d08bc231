// CPU convolution kernels (contract: tensor/kernels/conv2d.h), forward and backward side by side.
// With col_n = im2col(x_n) (K, P), K = Cin·kh·kw, P = Ho·Wo, and g_n = dL/dy_n (Cout, P):
//   y_n  = W · col_n (+ b)            (Cout, P)   W viewed as (Cout, K)
//   dW  += Σ_n g_n · col_nᵀ           (Cout, K)
//   dx_n += col2im(Wᵀ · g_n)          (Cin, H, W) (col2im adds each column entry back to the pixel
//                                                  it was copied from)
//   db  += Σ_n Σ_p g_n[:, p]          (Cout)
// On the fast float32 path, a 3×3 stride-1 undilated conv with enough tiles and channels runs as
// Winograd F(4,3) or F(2,3) instead (cpu/winograd.h; exec_context().conv_algo, winograd_m below):
// its forward, its input gradient (the transposed conv below) and its weight gradient. Otherwise
// two paths compute these:
// - float32 with a fast GEMM family (exec_context().cpu_kernels, cpu/gemm.h): W packed once per
//   call; im2col packed straight from the images into the GEMM's panels (no col buffer); the
//   forward one GEMM per image for large images split evenly over the threads, else one over the
//   whole batch; dW one GEMM over the whole batch (threads split its columns: no partial sums);
//   dx of a stride-1 conv as the transposed convolution on the forward path (no col2im).
// - float64 and the Portable family, the reference: per image, im2col tiles that stay in L2 and
//   Eigen's GEMM (matmul_reference); with N >= threads images are split over OpenMP threads (each
//   with its own scratch and dW partial, summed in thread order: deterministic for a fixed thread
//   count), otherwise images run one after another and the GEMM and im2col use the threads.
// On both paths a strided conv's dx is Wᵀ · g_n then col2im, and a 1×1 stride-1 conv (col_n = x_n,
// no im2col at all) has dx_n += Wᵀ · g_n; Wᵀ is packed once per call on the fast path.
// col_n is recomputed in backward from x (kept alive by the graph anyway) instead of being
// stored: the graph holds no im2col buffers.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "tensor/kernels/context.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/cpu/gemm.h"
#include "tensor/kernels/cpu/winograd.h"

namespace sm::cpu {

namespace {

// The geometry in the names of the formulas above (Cin, Cout, Ho, Wo).
struct Geom {
  int64_t n, cin, h, w;      // input  (N, Cin, H, W)
  int64_t cout, kh, kw;      // weight (Cout, Cin, kh, kw)
  int64_t ho, wo;            // output (N, Cout, Ho, Wo)
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  ConvThreading threading;
  CpuKernels kernels;  // resolved (never Auto)
  ConvAlgo algo;
  int threads;
  int64_t k() const { return cin * kh * kw; }
  int64_t pix() const { return ho * wo; }
  bool direct() const {  // 1x1, stride 1, no padding: col_n is x_n itself
    return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

Geom geom_make(const kernels::Conv2dGeometry& g) {
  const ExecContext& ctx = exec_context();
  return {g.n, g.c, g.h, g.w, g.k, g.kh, g.kw, g.out_h(), g.out_w(), g.stride_h, g.stride_w, g.pad_h, g.pad_w,
          g.dil_h, g.dil_w, ctx.conv_threading, gemm_kernels_resolve(ctx.cpu_kernels), ctx.conv_algo,
          ctx.threads_or_default()};
}

// The Winograd tile size (cpu/winograd.h) for a float32 conv on the fast path: 2 or 4 for a 3×3,
// stride-1, undilated conv where exec_context().conv_algo and the measured crossover choose it;
// 0 = the direct GEMM.
Conv3x3Shape shape3x3(const Geom& g) { return {g.n, g.cin, g.h, g.w, g.cout, g.pad_h, g.pad_w}; }
int winograd_m(const Geom& g) {
  if (g.kernels == CpuKernels::Portable || g.kh != 3 || g.kw != 3 || g.stride_h != 1 || g.stride_w != 1 ||
      g.dilation_h != 1 || g.dilation_w != 1)
    return 0;
  return winograd_tile(shape3x3(g), g.algo);
}

}  // namespace

// Prepared weights of one conv (kernels::Conv2dWeightCache): each entry is built by the first
// call that needs it, for that call's kernel family (a call with another family starts over).
// The mutex makes concurrent first calls safe; entries are handed out as shared copies.
struct ConvWeightCache {
  std::mutex mutex;
  CpuKernels kernels = CpuKernels::Auto;  // the family of the entries below (never Auto once built)
  PackedA packed;                         // W (Cout, Cin·kh·kw) for the im2col GEMM
  WinogradWeights winograd2, winograd4;   // U[ξ] of F(2,3) and F(4,3)

  void family_check(CpuKernels family) {
    if (kernels == family) return;
    kernels = family;
    packed = PackedA();
    winograd2.clear();
    winograd4.clear();
  }
  PackedA direct(const Geom& g, const float* w) {
    std::lock_guard<std::mutex> lock(mutex);
    family_check(g.kernels);
    if (!packed.data) packed = pack_a(g.kernels, g.cout, g.k(), MatRef{w, g.k(), 1});
    return packed;
  }
  WinogradWeights winograd(const Geom& g, int m, const float* w) {
    std::lock_guard<std::mutex> lock(mutex);
    family_check(g.kernels);
    WinogradWeights& u = m == 4 ? winograd4 : winograd2;
    if (u.empty()) u = winograd_weights(m, shape3x3(g), w, g.kernels, g.threads);
    return u;
  }
};

namespace {

template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using MapRC = Eigen::Map<const MatR<T>>;


// Output columns ow whose input column iw = ow*s + off lies in [0, W): [lo, hi).
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = off > W - 1 ? 0 : std::min<int64_t>(Wo, (W - 1 - off) / s + 1);
  if (hi < lo) hi = lo;
}

// col (K, Pt) <- x (Cin, H, W) for the output rows [oh0, oh1), Pt = (oh1 - oh0)*Wo; zeros
// where the kernel reads padding.
template <class T> void im2col(const Geom& g, const T* x, T* col, int64_t oh0, int64_t oh1) {
  const int64_t rows = g.k(), P = (oh1 - oh0) * g.wo;
#pragma omp parallel for num_threads(g.threads) schedule(static) if (!omp_in_parallel() && rows * P > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh, kj = r % g.kw;
    T* row = col + r * P;  // (Ho, Wo)
    const int64_t off_w = kj * g.dilation_w - g.pad_w;
    int64_t lo, hi;
    valid_range(off_w, g.stride_w, g.w, g.wo, lo, hi);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      T* out = row + (oh - oh0) * g.wo;  // (Wo)
      const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
      if (ih < 0 || ih >= g.h) {
        for (int64_t ow = 0; ow < g.wo; ++ow) out[ow] = T(0);
        continue;
      }
      const T* in = x + (c * g.h + ih) * g.w + off_w;  // in[ow*s] is x[c, ih, ow*s + off_w]
      for (int64_t ow = 0; ow < lo; ++ow) out[ow] = T(0);
      if (g.stride_w == 1) {
        for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow];
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.stride_w];
      }
      for (int64_t ow = hi; ow < g.wo; ++ow) out[ow] = T(0);
    }
  }
}

// dx (Cin, H, W) += col2im(dcol (K, Pt)) for the output rows [oh0, oh1): the adjoint of
// im2col. Parallel over input channels (each owns its planes of dx): no two threads add into
// the same pixel.
template <class T> void col2im_add(const Geom& g, const T* dcol, T* dx, int64_t oh0, int64_t oh1) {
  const int64_t P = (oh1 - oh0) * g.wo, kk = g.kh * g.kw;
#pragma omp parallel for num_threads(g.threads) schedule(static) if (!omp_in_parallel() && g.k() * P > (1 << 16))
  for (int64_t c = 0; c < g.cin; ++c) {
    for (int64_t q = 0; q < kk; ++q) {
      const int64_t ki = q / g.kw, kj = q % g.kw;
      const T* row = dcol + (c * kk + q) * P;  // (Ho, Wo)
      const int64_t off_w = kj * g.dilation_w - g.pad_w;
      int64_t lo, hi;
      valid_range(off_w, g.stride_w, g.w, g.wo, lo, hi);
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dilation_h;
        if (ih < 0 || ih >= g.h) continue;
        const T* src = row + (oh - oh0) * g.wo;
        T* dst = dx + (c * g.h + ih) * g.w + off_w;
        if (g.stride_w == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.stride_w] += src[ow];
        }
      }
    }
  }
}

// Output rows per im2col tile: the (K, rows*Wo) scratch stays near 512 KiB, inside L2, so the
// GEMM reads what im2col just wrote from cache (and col2im likewise).
int64_t tile_rows(const Geom& g, size_t elem) {
  if (g.direct()) return g.ho;
  // ... but at least 256 columns: narrower tiles starve the GEMM (measured on 512x16x16).
  const int64_t budget = int64_t(512 * 1024 / elem);
  const int64_t rows = std::max(budget / std::max<int64_t>(1, g.k() * g.wo), (256 + g.wo - 1) / g.wo);
  return std::max<int64_t>(1, std::min<int64_t>(g.ho, rows));
}

// op(W) · B for every image of one kernel call: W (Cout, K), or Wᵀ (K, Cout) for the input
// gradient. On the fast float32 path W is packed for the micro-kernel once per call and shared by
// every image and thread; otherwise (float64, Portable) it is Eigen's GEMM (which packs per call).
template <class T> class WeightProduct {
 public:
  WeightProduct(const Geom& g, const T* w, bool transposed)
      : g_(g), w_(w), transposed_(transposed), m_(transposed ? g.k() : g.cout), inner_(transposed ? g.cout : g.k()) {
    if constexpr (std::is_same_v<T, float>)
      if (g.kernels != CpuKernels::Portable)
        packed_ = pack_a(g.kernels, m_, inner_, transposed ? MatRef{w, 1, g.k()} : MatRef{w, g.k(), 1});
  }
  // W as packed before (ConvWeightCache): nothing to pack.
  WeightProduct(const Geom& g, const T* w, PackedA packed)
      : g_(g), w_(w), transposed_(false), m_(g.cout), inner_(g.k()), packed_(std::move(packed)) {}
  bool fast() const { return packed_.data != nullptr; }
  const PackedA& packed() const { return packed_; }
  // C (M, n) (row stride ldc) = [C +] op(W) · B, B (inner, n) row-major with row stride ldb.
  void run(const T* b, int64_t ldb, int64_t n, T* c, int64_t ldc, bool accumulate, int threads) const {
    if constexpr (std::is_same_v<T, float>) {
      if (packed_.data) {
        sgemm_packed(packed_, n, b_packer(MatRef{b, ldb, 1}), c, ldc, accumulate, threads);
        return;
      }
    }
    matmul_reference(transposed_, false, m_, n, inner_, w_, g_.k(), b, ldb, c, ldc, accumulate);
  }

 private:
  const Geom& g_;
  const T* w_;
  bool transposed_;
  int64_t m_, inner_;
  PackedA packed_;
};

bool batch_parallel(const Geom& g) {
  if (g.threading == ConvThreading::GemmThreads) return false;
  const int64_t n = g.n, t = g.threads;
  if (g.threading == ConvThreading::BatchSplit) return t > 1;
  // Whole images per thread when the split is even or the batch is large; measured on 2 cores,
  // splitting the batch beats Eigen's threaded GEMM (no barriers inside the GEMM; and it degrades
  // far less when the cores are shared with other work).
  return t > 1 && n >= t && (n % t == 0 || n >= 4 * t);
}

// The GEMM's B packer for the batch's col = [col_1 … col_N] (K, N·P), read straight from the
// images: the packed slivers are the only copy (no col buffer). Column q = n·P + p is pixel p of
// image n; dst[s][k][j] = col(k0 + k, j0 + s·nr + j). A sliver's nr pixels are cut into runs
// within one output row of one image (one run for most slivers, two or three where it wraps);
// each run of one row kk = (c, ki, kj) is a strided read of one input row, with zeros where the
// kernel reads padding.
BPacker im2col_packer(const Geom& g, const float* x) {
  return [&g, x](int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
    struct Run {
      const float* image;                  // x_n
      int64_t oh, ow, len, at;  // output row, first column, length, offset in the sliver row
    };
    Run runs[64];
    const int64_t P = g.pix();
    for (int64_t s = 0; s * nr < nc; ++s) {
      const int64_t w = std::min<int64_t>(nr, nc - s * nr);
      int nrun = 0;
      for (int64_t q = j0 + s * nr, at = 0; at < w;) {
        const int64_t n = q / P, p = q % P, oh = p / g.wo, ow = p % g.wo, len = std::min(w - at, g.wo - ow);
        runs[nrun++] = {x + n * g.cin * g.h * g.w, oh, ow, len, at};
        q += len;
        at += len;
      }
      float* d = dst + s * nr * kc;
      int64_t c = k0 / (g.kh * g.kw), ki = (k0 / g.kw) % g.kh, kj = k0 % g.kw;
      for (int64_t k = 0; k < kc; ++k, d += nr) {
        const int64_t off_h = ki * g.dilation_h - g.pad_h, off_w = kj * g.dilation_w - g.pad_w;
        for (int r = 0; r < nrun; ++r) {
          const Run& run = runs[r];
          float* out = d + run.at;
          const int64_t ih = run.oh * g.stride_h + off_h;
          if (ih < 0 || ih >= g.h) {
            std::fill(out, out + run.len, 0.f);
            continue;
          }
          const float* row = run.image + (c * g.h + ih) * g.w;
          const int64_t iw0 = run.ow * g.stride_w + off_w;  // input column of the run's first pixel
          // Pixels i of the run with 0 <= iw0 + i·sw < W: [lo, hi).
          int64_t lo, hi;
          valid_range(iw0, g.stride_w, g.w, run.len, lo, hi);
          for (int64_t i = 0; i < lo; ++i) out[i] = 0.f;
          if (g.stride_w == 1) {
            std::copy(row + iw0 + lo, row + iw0 + hi, out + lo);
          } else {
            for (int64_t i = lo; i < hi; ++i) out[i] = row[iw0 + i * g.stride_w];
          }
          for (int64_t i = hi; i < run.len; ++i) out[i] = 0.f;
        }
        for (int64_t j = w; j < nr; ++j) d[j] = 0.f;
        if (++kj == g.kw) {  // next row of col: (c, ki, kj) in row-major order
          kj = 0;
          if (++ki == g.kh) ki = 0, ++c;
        }
      }
    }
  };
}

// The GEMM's B packer for the batch's colᵀ (N·P, K) (the weight gradient's right operand), read
// straight from the images: row q = n·P + p is pixel p of image n, so that dW = Σ_n g_n · col_nᵀ
// is one GEMM whose reduction runs over every pixel of the batch. dst[s][k][j] = col_n(j0 + s·nr
// + j, p) for q = k0 + k: sliver column j is one row kk = (c, ki, kj) of col, over the pixels
// [k0, k0 + kc) cut into runs within one output row of one image. Reads go along input rows;
// writes are strided by nr (inside the L1-sized sliver).
BPacker im2col_t_packer(const Geom& g, const float* x) {
  return [&g, x](int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
    struct Run {
      const float* image;  // x_n
      int64_t oh, ow, len, at;
    };
    std::vector<Run> runs;
    const int64_t P = g.pix();
    for (int64_t q = k0, at = 0; at < kc;) {
      const int64_t n = q / P, p = q % P, oh = p / g.wo, ow = p % g.wo, len = std::min(kc - at, g.wo - ow);
      runs.push_back({x + n * g.cin * g.h * g.w, oh, ow, len, at});
      q += len;
      at += len;
    }
    for (int64_t s = 0; s * nr < nc; ++s) {
      const int64_t w = std::min<int64_t>(nr, nc - s * nr);
      float* d = dst + s * nr * kc;
      for (int64_t j = 0; j < w; ++j) {
        const int64_t kk = j0 + s * nr + j, c = kk / (g.kh * g.kw), ki = (kk / g.kw) % g.kh, kj = kk % g.kw;
        const int64_t off_h = ki * g.dilation_h - g.pad_h, off_w = kj * g.dilation_w - g.pad_w;
        for (const Run& run : runs) {
          float* out = d + run.at * nr + j;  // out[i·nr] = col(kk, first pixel of the run + i)
          const int64_t ih = run.oh * g.stride_h + off_h;
          if (ih < 0 || ih >= g.h) {
            for (int64_t i = 0; i < run.len; ++i) out[i * nr] = 0.f;
            continue;
          }
          const float* row = run.image + (c * g.h + ih) * g.w;
          const int64_t iw0 = run.ow * g.stride_w + off_w;
          int64_t lo, hi;
          valid_range(iw0, g.stride_w, g.w, run.len, lo, hi);
          for (int64_t i = 0; i < lo; ++i) out[i * nr] = 0.f;
          for (int64_t i = lo; i < hi; ++i) out[i * nr] = row[iw0 + i * g.stride_w];
          for (int64_t i = hi; i < run.len; ++i) out[i * nr] = 0.f;
        }
      }
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = w; j < nr; ++j) d[k * nr + j] = 0.f;
    }
  };
}

// dW (Cout, K) += Σ_n g_n (Cout, P) · col_nᵀ (P, K) on the fast float32 path, as one GEMM over
// the whole batch: A = [g_1 … g_N] (Cout, N·P) packed once, B = the batch's colᵀ packed straight
// from the images, C = dW itself. Why one GEMM and not one per image: with a small image (8×8
// pixels in refine's last stages) a per-image product is only P deep, and it would read and write
// the whole dW (up to 9.4 MB) once per image: memory-bound. Threads split the columns of dW, so
// there are no per-thread partial sums and the result is the same for any thread count.
void conv_dweight_batched(const Geom& g, const float* x, const float* gy, float* dw) {
  const int64_t P = g.pix(), K = g.k();
  const PackedA ga = pack_a_batched(g.kernels, g.cout, P, g.n, gy);
  sgemm_packed(ga, K, im2col_t_packer(g, x), dw, K, true, g.threads);
}

// The fast float32 forward. Small images (P < 1024 pixels) or a batch that does not split over
// the threads: one GEMM for the whole batch, y (Cout, N·P) = W · col with W packed once, col
// packed straight from the images, and C mapped back onto y's (N, Cout, P) layout (CMap: one
// P-column block per image); threads split its columns (parts of one image for batch-1
// inference). Why not one GEMM per image there: with 8×8 or 16×16 pixels (the last stages) each
// would be only P columns wide and would stream all of W (up to 9.4 MB) once per image.
void conv_forward_fast(const Geom& g, const float* x, const WeightProduct<float>& wprod, const float* b, float* y,
                       bool accumulate = false, bool relu = false) {
  const int64_t P = g.pix();
  if (P >= 1024 && batch_parallel(g)) {
    // Large images: one GEMM per image, whole images per thread (a 1×1 stride-1 conv reads x_n
    // rows as they are). Batching them measured no faster, and this keeps each image's B panel
    // to itself.
#pragma omp parallel for num_threads(g.threads) schedule(static)
    for (int64_t n = 0; n < g.n; ++n) {
      const float* xn = x + n * g.cin * g.h * g.w;  // (Cin, H, W); columns [0, P) are image 0 of xn
      const BPacker packer = g.direct() ? b_packer(MatRef{xn, P, 1}) : im2col_packer(g, xn);
      sgemm_packed(wprod.packed(), P, packer, y + n * g.cout * P, P, accumulate, 1);
    }
  } else {
    sgemm_packed(wprod.packed(), g.n * P, im2col_packer(g, x), CMap{y, P, P, g.cout * P}, accumulate, g.threads);
  }
  if (b || relu) {
#pragma omp parallel for num_threads(g.threads) schedule(static) if (g.n * g.cout * P > (1 << 16))
    for (int64_t nc = 0; nc < g.n * g.cout; ++nc) {
      float* row = y + nc * P;
      const float bias = b ? b[nc % g.cout] : 0.f;
      if (relu)
        for (int64_t p = 0; p < P; ++p) row[p] = std::max(row[p] + bias, 0.f);
      else
        for (int64_t p = 0; p < P; ++p) row[p] += bias;
    }
  }
}

// The input gradient of a stride-1 conv is itself a stride-1 conv of the output gradient
// (the transposed convolution): with W'[ci, co, i, j] = W[co, ci, kh-1-i, kw-1-j] (in and out
// channels swapped, kernel turned 180°) and padding p' = d·(k-1) − p on each side,
//   dx[ci, h, w] = Σ_{co,i,j} dy[co, h + p − d·i, w + p − d·j] · W[co, ci, i, j]
//               = Σ_{co,i',j'} dy[co, h − p' + d·i', w − p' + d·j'] · W'[ci, co, i', j']
// (i' = kh-1-i), which is conv(dy, W', p') evaluated on an (H, W) output. So it runs on the fast
// forward path (one deep GEMM per image, K' = Cout·kh·kw) instead of Wᵀ·dy followed by col2im,
// whose reduction is only Cout deep and whose scatter-add is a second pass over K×P.
// Needs p ≤ d·(k−1) on both axes (every conv of our networks; else the col2im path runs).
bool dx_as_conv_possible(const Geom& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= g.dilation_h * (g.kh - 1) &&
         g.pad_w <= g.dilation_w * (g.kw - 1) && !g.direct();
}

// dx (N, Cin, H, W) += conv(dy, W', p') as above (float32, fast kernels).
void conv_dinput_as_conv(const Geom& g, const float* w, const float* gy, float* dx) {
  Geom t = g;  // the transposed conv's geometry: dy (N, Cout, Ho, Wo) → dx (N, Cin, H, W)
  t.cin = g.cout;
  t.h = g.ho;
  t.w = g.wo;
  t.cout = g.cin;
  t.ho = g.h;
  t.wo = g.w;
  t.pad_h = g.dilation_h * (g.kh - 1) - g.pad_h;
  t.pad_w = g.dilation_w * (g.kw - 1) - g.pad_w;
  // Winograd reads W' from W in place (turned and transposed while it is transformed).
  if (const int m = winograd_m(t))
    return winograd_forward(m, shape3x3(t), gy, w, nullptr, dx, true, t.kernels, t.threads, WinogradFilter::Transposed);
  // W' (Cin, Cout, kh, kw), in blocks of 16×16 channel pairs so that both the reads and the
  // writes stay within a few pages (a plain loop over co then ci would write one float every
  // Cout·kh·kw floats, 18 KB apart for the 512-channel layers).
  const int64_t kk = g.kh * g.kw, blk = 16;
  std::vector<float> wf(size_t(g.cin * g.cout * kk));
#pragma omp parallel for num_threads(g.threads) schedule(static) if (wf.size() > (1 << 16))
  for (int64_t ci0 = 0; ci0 < g.cin; ci0 += blk)
    for (int64_t co0 = 0; co0 < g.cout; co0 += blk)
      for (int64_t ci = ci0; ci < std::min(g.cin, ci0 + blk); ++ci)
        for (int64_t co = co0; co < std::min(g.cout, co0 + blk); ++co) {
          const float* src = w + (co * g.cin + ci) * kk;
          float* dst = wf.data() + (ci * g.cout + co) * kk;
          for (int64_t q = 0; q < kk; ++q) dst[kk - 1 - q] = src[q];  // (i, j) → (kh−1−i, kw−1−j)
        }
  const WeightProduct<float> wprod(t, wf.data(), false);
  conv_forward_fast(t, gy, wprod, nullptr, dx, true);
}

// y = max(0, y) over the whole output (the reference paths' fused activation: a plain second pass).
template <class T> void relu_inplace(const Geom& g, T* y) {
  const int64_t n = g.n * g.cout * g.pix();
#pragma omp parallel for num_threads(g.threads) schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(y[i], T(0));
}

// The forward with fused ReLU; `cache` (float32 fast path only, else ignored) supplies W packed
// or transformed as an earlier call left it, and keeps what this call prepares.
template <class T>
void conv_forward(const Geom& g, const T* x, const T* w, const T* b, T* y, bool relu = false,
                  ConvWeightCache* cache = nullptr) {
  const int64_t K = g.k(), P = g.pix(), rows = tile_rows(g, sizeof(T));
  if constexpr (std::is_same_v<T, float>) {
    if (const int m = winograd_m(g)) {
      if (!cache) return winograd_forward(m, shape3x3(g), x, w, b, y, false, g.kernels, g.threads, WinogradFilter::Forward, relu);
      const WinogradWeights u = cache->winograd(g, m, w);
      return winograd_forward(m, shape3x3(g), x, w, b, y, false, g.kernels, g.threads, WinogradFilter::Forward, relu, &u);
    }
    if (cache && g.kernels != CpuKernels::Portable)
      return conv_forward_fast(g, x, WeightProduct<float>(g, w, cache->direct(g, w)), b, y, false, relu);
  }
  // y_n[:, p0:p0+pt] (Cout, pt) = W (Cout, K) · B (K, pt), B with row stride ldb.
  const WeightProduct<T> wprod(g, w, false);
  if constexpr (std::is_same_v<T, float>) {
    if (wprod.fast()) return conv_forward_fast(g, x, wprod, b, y, false, relu);
  }
  auto w_times = [&](const T* bmat, int64_t ldb, int64_t pt, T* yout, int threads) {
    wprod.run(bmat, ldb, pt, yout, P, false, threads);
  };
  const int inner = batch_parallel(g) ? 1 : g.threads;  // threads inside one image's GEMM
  auto one_image = [&](int64_t n, std::vector<T>& col) {
    const T* xn = x + n * g.cin * g.h * g.w;  // (Cin, H, W)
    MapR<T> yn(y + n * g.cout * P, g.cout, P);  // (Cout, P)
    if (g.direct()) {
      w_times(xn, P, P, yn.data(), inner);
    } else {
      for (int64_t oh0 = 0; oh0 < g.ho; oh0 += rows) {
        const int64_t oh1 = std::min(g.ho, oh0 + rows), p0 = oh0 * g.wo, pt = (oh1 - oh0) * g.wo;
        im2col(g, xn, col.data(), oh0, oh1);          // (K, pt)
        w_times(col.data(), pt, pt, yn.data() + p0, inner);  // (Cout, pt)
      }
    }
    if (b)
      for (int64_t co = 0; co < g.cout; ++co) yn.row(co).array() += b[co];
  };
  const size_t scratch = g.direct() ? 0 : size_t(K * rows * g.wo);
  if (batch_parallel(g)) {
#pragma omp parallel num_threads(g.threads)
    {
      std::vector<T> col(scratch);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.n; ++n) one_image(n, col);
    }
  } else if (const int64_t tiles = (g.ho + rows - 1) / rows; !g.direct() && tiles >= 2 * g.threads) {
    // Few images (batch-1 inference) but many row tiles: split the tiles over the threads, each
    // with its own im2col scratch; every output column is written by exactly one thread.
    for (int64_t n = 0; n < g.n; ++n) {
      const T* xn = x + n * g.cin * g.h * g.w;     // (Cin, H, W)
      MapR<T> yn(y + n * g.cout * P, g.cout, P);  // (Cout, P)
#pragma omp parallel num_threads(g.threads)
      {
        std::vector<T> col(scratch);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t oh0 = t * rows, oh1 = std::min(g.ho, oh0 + rows), p0 = oh0 * g.wo, pt = (oh1 - oh0) * g.wo;
          im2col(g, xn, col.data(), oh0, oh1);       // (K, pt)
          w_times(col.data(), pt, pt, yn.data() + p0, 1);  // (Cout, pt)
        }
      }
      if (b)
        for (int64_t co = 0; co < g.cout; ++co) yn.row(co).array() += b[co];
    }
  } else {
    std::vector<T> col(scratch);
    for (int64_t n = 0; n < g.n; ++n) one_image(n, col);
  }
  if (relu) relu_inplace(g, y);
}

// gy (N, Cout, P); dw (Cout, K) or null; dx (N, Cin, H, W) or null; db (Cout) or null.
template <class T> void conv_backward(const Geom& g, const T* x, const T* w, const T* gy, T* dw, T* dx, T* db) {
  const int64_t K = g.k(), P = g.pix();
  const int64_t rows = tile_rows(g, sizeof(T));
  const int inner = batch_parallel(g) ? 1 : g.threads;  // threads inside one image's GEMMs
  if constexpr (std::is_same_v<T, float>) {
    if (g.kernels != CpuKernels::Portable) {
      if (dx && dx_as_conv_possible(g)) {
        conv_dinput_as_conv(g, w, gy, dx);
        dx = nullptr;  // done: the loops below compute dx only for strided and 1×1 convs
      }
      if (dw) {
        if (const int m = winograd_m(g))
          winograd_dweight(m, shape3x3(g), x, gy, dw, g.kernels, g.threads);
        else
          conv_dweight_batched(g, x, gy, dw);
        dw = nullptr;  // done: the loops below leave dW alone
      }
    }
  }
  std::optional<WeightProduct<T>> wt;  // Wᵀ, for the input gradient
  if (dx) wt.emplace(g, w, true);
  auto one_image = [&](int64_t n, std::vector<T>& col, std::vector<T>& dcol, MatR<T>* dw_acc) {
    const T* xn = x + n * g.cin * g.h * g.w;         // (Cin, H, W)
    const T* gn = gy + n * g.cout * P;               // (Cout, P)
    T* dxn = dx ? dx + n * g.cin * g.h * g.w : nullptr;  // (Cin, H, W)
    if (g.direct()) {
      // dW (Cout, K) += g_n (Cout, P) · x_nᵀ (P, K);  dx_n (Cin, P) += Wᵀ (K, Cout) · g_n
      if (dw_acc) matmul_reference(false, true, g.cout, K, P, gn, P, xn, P, dw_acc->data(), K, true);
      if (dxn) wt->run(gn, P, P, dxn, P, true, inner);
      return;
    }
    for (int64_t oh0 = 0; oh0 < g.ho; oh0 += rows) {
      const int64_t oh1 = std::min(g.ho, oh0 + rows), p0 = oh0 * g.wo, pt = (oh1 - oh0) * g.wo;
      if (dw_acc) {  // dW (Cout, K) += g_n[:, p0:p0+pt] · colᵀ (pt, K)
        im2col(g, xn, col.data(), oh0, oh1);  // (K, pt)
        matmul_reference(false, true, g.cout, K, pt, gn + p0, P, col.data(), pt, dw_acc->data(), K, true);
      }
      if (dxn) {  // dcol (K, pt) = Wᵀ (K, Cout) · g_n[:, p0:p0+pt]
        wt->run(gn + p0, P, pt, dcol.data(), pt, false, inner);
        col2im_add(g, dcol.data(), dxn, oh0, oh1);
      }
    }
  };
  const size_t scratch = g.direct() ? 0 : size_t(K * rows * g.wo);
  if (batch_parallel(g)) {
    const int nt = g.threads;
    std::vector<MatR<T>> partial(dw ? nt : 0);
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num();
      std::vector<T> col(dw ? scratch : 0), dcol(dx ? scratch : 0);
      MatR<T>* acc = nullptr;
      if (dw) {
        partial[t] = MatR<T>::Zero(g.cout, K);
        acc = &partial[t];
      }
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.n; ++n) one_image(n, col, dcol, acc);
    }
    if (dw) {
      MapR<T> dwm(dw, g.cout, K);
      for (int t = 0; t < nt; ++t) dwm += partial[t];  // fixed order: deterministic
    }
  } else {
    std::vector<T> col(dw ? scratch : 0), dcol(dx ? scratch : 0);
    MapR<T> dwm(dw ? dw : nullptr, dw ? g.cout : 0, dw ? K : 0);
    MatR<T> acc;
    if (dw) acc = MatR<T>::Zero(g.cout, K);
    for (int64_t n = 0; n < g.n; ++n) one_image(n, col, dcol, dw ? &acc : nullptr);
    if (dw) dwm += acc;
  }
  if (db) {
    // db[c] += Σ_n Σ_p gy[n, c, p], summed in a fixed order per channel.
#pragma omp parallel for num_threads(g.threads) schedule(static) if (g.cout * g.n * P > (1 << 16))
    for (int64_t co = 0; co < g.cout; ++co) {
      T s = 0;
      for (int64_t n = 0; n < g.n; ++n) s += MapRC<T>(gy + (n * g.cout + co) * P, 1, P).sum();
      db[co] += s;
    }
  }
}

}  // namespace

void conv2d_forward(const kernels::Conv2dGeometry& geometry, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    Tensor& y, bool relu, std::shared_ptr<ConvWeightCache>* cache) {
  const Geom g = geom_make(geometry);
  if (cache && !*cache) *cache = std::make_shared<ConvWeightCache>();
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    conv_forward<T>(g, x.data<T>(), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr, y.data<T>(), relu,
                    cache ? cache->get() : nullptr);
  });
}

void conv2d_backward(const kernels::Conv2dGeometry& geometry, const Tensor& x, const Tensor& weight, const Tensor& dy,
                     Tensor* dx, Tensor* dweight, Tensor* dbias) {
  const Geom g = geom_make(geometry);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    conv_backward<T>(g, x.data<T>(), weight.data<T>(), dy.data<T>(), dweight ? dweight->data<T>() : nullptr,
                     dx ? dx->data<T>() : nullptr, dbias ? dbias->data<T>() : nullptr);
  });
}

}  // namespace sm::cpu
