// Conv2d forward/backward by im2col + Eigen GEMM (see conv2d.h). Per image n:
//   col_n = im2col(x_n)                       (K, P)     K = Cin*kh*kw, P = Ho*Wo
//   y_n   = W · col_n (+ b)                   (Cout, P)  W viewed as (Cout, K)
// Backward, with g_n = dL/dy_n (Cout, P):
//   dW   += Σ_n g_n · col_nᵀ                  (Cout, K)
//   dx_n += col2im(Wᵀ · g_n)                  (Cin, H, W)  (col2im adds each column entry back
//                                                          to the pixel it was copied from)
//   db   += Σ_n Σ_p g_n[:, p]                 (Cout)
// col_n is recomputed in backward from x (kept alive by the graph anyway) instead of being
// stored: the graph holds no im2col buffers, only per-thread scratch while an op runs.
// Threads: with N >= threads, images are split over OpenMP threads (each with its own scratch
// and its own dW partial, summed in thread order: deterministic for a fixed thread count);
// otherwise images run one after another and Eigen's GEMM and im2col use the threads.
#include "layers/conv2d.h"

#include <atomic>
#include <omp.h>

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "layers/cuda_glue.h"
#include "layers/elementwise.h"

namespace sm {

namespace {

template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using MapRC = Eigen::Map<const MatR<T>>;

struct ConvGeom {
  int64_t n, cin, h, w;      // input  (N, Cin, H, W)
  int64_t cout, kh, kw;      // weight (Cout, Cin, kh, kw)
  int64_t ho, wo;            // output (N, Cout, Ho, Wo)
  Conv2dParams p;
  int64_t k() const { return cin * kh * kw; }
  int64_t pix() const { return ho * wo; }
  bool direct() const {  // 1x1, stride 1, no padding: col_n is x_n itself
    return kh == 1 && kw == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
  }
};

// Output columns ow whose input column iw = ow*s + off lies in [0, W): [lo, hi).
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = off > W - 1 ? 0 : std::min<int64_t>(Wo, (W - 1 - off) / s + 1);
  if (hi < lo) hi = lo;
}

// col (K, Pt) <- x (Cin, H, W) for the output rows [oh0, oh1), Pt = (oh1 - oh0)*Wo; zeros
// where the kernel reads padding.
template <class T> void im2col(const ConvGeom& g, const T* x, T* col, int64_t oh0, int64_t oh1) {
  const int64_t rows = g.k(), P = (oh1 - oh0) * g.wo;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && rows * P > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh, kj = r % g.kw;
    T* row = col + r * P;  // (Ho, Wo)
    const int64_t off_w = kj * g.p.dilation_w - g.p.pad_w;
    int64_t lo, hi;
    valid_range(off_w, g.p.stride_w, g.w, g.wo, lo, hi);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      T* out = row + (oh - oh0) * g.wo;  // (Wo)
      const int64_t ih = oh * g.p.stride_h - g.p.pad_h + ki * g.p.dilation_h;
      if (ih < 0 || ih >= g.h) {
        for (int64_t ow = 0; ow < g.wo; ++ow) out[ow] = T(0);
        continue;
      }
      const T* in = x + (c * g.h + ih) * g.w + off_w;  // in[ow*s] is x[c, ih, ow*s + off_w]
      for (int64_t ow = 0; ow < lo; ++ow) out[ow] = T(0);
      if (g.p.stride_w == 1) {
        for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow];
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.p.stride_w];
      }
      for (int64_t ow = hi; ow < g.wo; ++ow) out[ow] = T(0);
    }
  }
}

// dx (Cin, H, W) += col2im(dcol (K, Pt)) for the output rows [oh0, oh1): the adjoint of
// im2col. Parallel over input channels (each owns its planes of dx): no two threads add into
// the same pixel.
template <class T> void col2im_add(const ConvGeom& g, const T* dcol, T* dx, int64_t oh0, int64_t oh1) {
  const int64_t P = (oh1 - oh0) * g.wo, kk = g.kh * g.kw;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && g.k() * P > (1 << 16))
  for (int64_t c = 0; c < g.cin; ++c) {
    for (int64_t q = 0; q < kk; ++q) {
      const int64_t ki = q / g.kw, kj = q % g.kw;
      const T* row = dcol + (c * kk + q) * P;  // (Ho, Wo)
      const int64_t off_w = kj * g.p.dilation_w - g.p.pad_w;
      int64_t lo, hi;
      valid_range(off_w, g.p.stride_w, g.w, g.wo, lo, hi);
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t ih = oh * g.p.stride_h - g.p.pad_h + ki * g.p.dilation_h;
        if (ih < 0 || ih >= g.h) continue;
        const T* src = row + (oh - oh0) * g.wo;
        T* dst = dx + (c * g.h + ih) * g.w + off_w;
        if (g.p.stride_w == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.p.stride_w] += src[ow];
        }
      }
    }
  }
}

// Output rows per im2col tile: the (K, rows*Wo) scratch stays near 512 KiB, inside L2, so the
// GEMM reads what im2col just wrote from cache (and col2im likewise).
int64_t tile_rows(const ConvGeom& g, size_t elem) {
  if (g.direct()) return g.ho;
  // ... but at least 256 columns: narrower tiles starve the GEMM (measured on 512x16x16).
  const int64_t budget = int64_t(512 * 1024 / elem);
  const int64_t rows = std::max(budget / std::max<int64_t>(1, g.k() * g.wo), (256 + g.wo - 1) / g.wo);
  return std::max<int64_t>(1, std::min<int64_t>(g.ho, rows));
}

int g_threading = 0;  // 0 auto, 1 split images over threads, 2 Eigen's threads per image

bool batch_parallel(int64_t n) {
  if (g_threading == 2) return false;
  const int64_t t = omp_get_max_threads();
  if (g_threading == 1) return t > 1;
  // Whole images per thread when the split is even or the batch is large; measured on 2 cores,
  // splitting the batch beats Eigen's threaded GEMM (no barriers inside the GEMM; and it degrades
  // far less when the cores are shared with other work).
  return t > 1 && n >= t && (n % t == 0 || n >= 4 * t);
}

template <class T> void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t K = g.k(), P = g.pix(), rows = tile_rows(g, sizeof(T));
  MapRC<T> wm(w, g.cout, K);  // (Cout, K)
  auto one_image = [&](int64_t n, std::vector<T>& col) {
    const T* xn = x + n * g.cin * g.h * g.w;  // (Cin, H, W)
    MapR<T> yn(y + n * g.cout * P, g.cout, P);  // (Cout, P)
    if (g.direct()) {
      yn.noalias() = wm * MapRC<T>(xn, K, P);
    } else {
      for (int64_t oh0 = 0; oh0 < g.ho; oh0 += rows) {
        const int64_t oh1 = std::min(g.ho, oh0 + rows), p0 = oh0 * g.wo, pt = (oh1 - oh0) * g.wo;
        im2col(g, xn, col.data(), oh0, oh1);                               // (K, pt)
        yn.middleCols(p0, pt).noalias() = wm * MapRC<T>(col.data(), K, pt);  // (Cout, pt)
      }
    }
    if (b)
      for (int64_t co = 0; co < g.cout; ++co) yn.row(co).array() += b[co];
  };
  const size_t scratch = g.direct() ? 0 : size_t(K * rows * g.wo);
  if (batch_parallel(g.n)) {
#pragma omp parallel
    {
      std::vector<T> col(scratch);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.n; ++n) one_image(n, col);
    }
  } else if (const int64_t tiles = (g.ho + rows - 1) / rows; !g.direct() && tiles >= 2 * omp_get_max_threads()) {
    // Few images (batch-1 inference) but many row tiles: split the tiles over the threads, each
    // with its own im2col scratch; every output column is written by exactly one thread.
    for (int64_t n = 0; n < g.n; ++n) {
      const T* xn = x + n * g.cin * g.h * g.w;     // (Cin, H, W)
      MapR<T> yn(y + n * g.cout * P, g.cout, P);  // (Cout, P)
#pragma omp parallel
      {
        std::vector<T> col(scratch);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t oh0 = t * rows, oh1 = std::min(g.ho, oh0 + rows), p0 = oh0 * g.wo, pt = (oh1 - oh0) * g.wo;
          im2col(g, xn, col.data(), oh0, oh1);                               // (K, pt)
          yn.middleCols(p0, pt).noalias() = wm * MapRC<T>(col.data(), K, pt);  // (Cout, pt)
        }
      }
      if (b)
        for (int64_t co = 0; co < g.cout; ++co) yn.row(co).array() += b[co];
    }
  } else {
    std::vector<T> col(scratch);
    for (int64_t n = 0; n < g.n; ++n) one_image(n, col);
  }
}

// gy (N, Cout, P); dw (Cout, K) or null; dx (N, Cin, H, W) or null; db (Cout) or null.
template <class T> void conv_backward(const ConvGeom& g, const T* x, const T* w, const T* gy, T* dw, T* dx, T* db) {
  const int64_t K = g.k(), P = g.pix();
  MapRC<T> wm(w, g.cout, K);  // (Cout, K)
  const int64_t rows = tile_rows(g, sizeof(T));
  auto one_image = [&](int64_t n, std::vector<T>& col, std::vector<T>& dcol, MatR<T>* dw_acc) {
    const T* xn = x + n * g.cin * g.h * g.w;         // (Cin, H, W)
    MapRC<T> gn(gy + n * g.cout * P, g.cout, P);     // (Cout, P)
    T* dxn = dx ? dx + n * g.cin * g.h * g.w : nullptr;  // (Cin, H, W)
    if (g.direct()) {
      if (dw_acc) dw_acc->noalias() += gn * MapRC<T>(xn, K, P).transpose();  // (Cout, K)
      if (dxn) MapR<T>(dxn, K, P).noalias() += wm.transpose() * gn;         // (Cin, H*W)
      return;
    }
    for (int64_t oh0 = 0; oh0 < g.ho; oh0 += rows) {
      const int64_t oh1 = std::min(g.ho, oh0 + rows), p0 = oh0 * g.wo, pt = (oh1 - oh0) * g.wo;
      if (dw_acc) {
        im2col(g, xn, col.data(), oh0, oh1);                                                 // (K, pt)
        dw_acc->noalias() += gn.middleCols(p0, pt) * MapRC<T>(col.data(), K, pt).transpose();  // (Cout, K)
      }
      if (dxn) {
        MapR<T>(dcol.data(), K, pt).noalias() = wm.transpose() * gn.middleCols(p0, pt);  // (K, pt)
        col2im_add(g, dcol.data(), dxn, oh0, oh1);
      }
    }
  };
  const size_t scratch = g.direct() ? 0 : size_t(K * rows * g.wo);
  if (batch_parallel(g.n)) {
    const int nt = omp_get_max_threads();
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
#pragma omp parallel for schedule(static) if (g.cout * g.n * P > (1 << 16))
    for (int64_t co = 0; co < g.cout; ++co) {
      T s = 0;
      for (int64_t n = 0; n < g.n; ++n) s += MapRC<T>(gy + (n * g.cout + co) * P, 1, P).sum();
      db[co] += s;
    }
  }
}

#ifdef SPINEMARK_CUDA
// The CUDA twin (cuda/conv_cudnn.cpp, cuDNN): same geometry, same contract; the backward adds into
// the gradients of x, weight and bias on the device.
Var conv2d_cuda(const Var& x, const Var& weight, const Var& bias, const ConvGeom& g) {
  cuda::ConvShape cs;
  cs.n = g.n, cs.c = g.cin, cs.h = g.h, cs.w = g.w, cs.k = g.cout, cs.kh = g.kh, cs.kw = g.kw;
  cs.stride_h = g.p.stride_h, cs.stride_w = g.p.stride_w, cs.pad_h = g.p.pad_h, cs.pad_w = g.p.pad_w;
  cs.dil_h = g.p.dilation_h, cs.dil_w = g.p.dilation_w;
  Tensor xc = x.value().contiguous(), wc = weight.value().contiguous();
  Tensor y = cuda_empty({g.n, g.cout, g.ho, g.wo});  // (N, Cout, Ho, Wo)
  cuda::conv2d_forward(cs, cuda_f32_ptr("conv2d", xc), cuda_f32_ptr("conv2d", wc), cuda_value_ptr("conv2d", bias),
                       cuda_f32_ptr("conv2d", y));
  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(y, inputs, "conv2d", [x, weight, bias, cs, xc, wc](const Tensor& gy) {
    Tensor gyc = gy.contiguous();
    cuda::conv2d_backward(cs, cuda_f32_ptr("conv2d", xc), cuda_f32_ptr("conv2d", wc), cuda_f32_ptr("conv2d", gyc),
                          cuda_grad_ptr("conv2d", x), cuda_grad_ptr("conv2d", weight), cuda_grad_ptr("conv2d", bias));
  });
}
#endif

}  // namespace

void conv2d_threading_set(int mode) { g_threading = mode; }

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

namespace {
std::atomic<int64_t> g_forward_macs{0};
}
int64_t conv2d_forward_macs() { return g_forward_macs.load(); }

Var conv2d(const Var& x, const Var& weight, const Var& bias, const Conv2dParams& p) {
  const Tensor& xv = x.value();
  const Tensor& wv = weight.value();
  SM_CHECK(xv.dim() == 4 && wv.dim() == 4,
           "conv2d: x " << shape_str(xv.shape()) << " must be (N, Cin, H, W) and weight " << shape_str(wv.shape())
                        << " (Cout, Cin, kh, kw)");
  SM_CHECK(xv.size(1) == wv.size(1), "conv2d: x " << shape_str(xv.shape()) << " has " << xv.size(1)
                                                  << " channels, weight " << shape_str(wv.shape()) << " expects "
                                                  << wv.size(1));
  SM_CHECK(xv.dtype() == wv.dtype(), "conv2d: x is " << dtype_name(xv.dtype()) << ", weight " << dtype_name(wv.dtype()));
  SM_CHECK(p.stride_h > 0 && p.stride_w > 0 && p.dilation_h > 0 && p.dilation_w > 0 && p.pad_h >= 0 && p.pad_w >= 0,
           "conv2d: stride and dilation must be >= 1 and padding >= 0");
#ifdef SPINEMARK_CUDA
  const bool on_gpu = xv.device() == Device::CUDA;
#else
  const bool on_gpu = false;
#endif
  if (!on_gpu) {
    check_cpu("conv2d", xv);
    check_cpu("conv2d", wv);
  }
  ConvGeom g{xv.size(0), xv.size(1), xv.size(2), xv.size(3), wv.size(0), wv.size(2), wv.size(3), 0, 0, p};
  g.ho = conv_out_size(g.h, g.kh, p.stride_h, p.pad_h, p.dilation_h);
  g.wo = conv_out_size(g.w, g.kw, p.stride_w, p.pad_w, p.dilation_w);
  SM_CHECK(g.ho > 0 && g.wo > 0, "conv2d: input " << shape_str(xv.shape()) << " is too small for kernel "
                                                   << shape_str(wv.shape()) << " with this padding/dilation");
  if (bias.defined())
    SM_CHECK(bias.value().dim() == 1 && bias.value().size(0) == g.cout && bias.value().dtype() == xv.dtype(),
             "conv2d: bias " << shape_str(bias.shape()) << " must be (" << g.cout << ") of x's dtype");

  g_forward_macs += g.n * g.cout * g.ho * g.wo * g.cin * g.kh * g.kw;
#ifdef SPINEMARK_CUDA
  if (on_gpu) return conv2d_cuda(x, weight, bias, g);
#endif
  Tensor xc = xv.contiguous(), wc = wv.contiguous();
  Tensor y = Tensor::empty({g.n, g.cout, g.ho, g.wo}, xv.dtype());  // (N, Cout, Ho, Wo)
  Tensor bc = bias.defined() ? bias.value().contiguous() : Tensor();
  dispatch_float(xv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    conv_forward<T>(g, xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr, y.data<T>());
  });

  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(y, inputs, "conv2d", [x, weight, bias, g, xc, wc](const Tensor& gy) {
    Var xv = x, wv = weight, bv = bias;
    Tensor gyc = gy.contiguous();
    dispatch_float(gyc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      T* dw = wv.requires_grad() ? wv.grad_buffer().data<T>() : nullptr;
      T* dx = xv.requires_grad() ? xv.grad_buffer().data<T>() : nullptr;
      T* db = bv.defined() && bv.requires_grad() ? bv.grad_buffer().data<T>() : nullptr;
      conv_backward<T>(g, xc.data<T>(), wc.data<T>(), gyc.data<T>(), dw, dx, db);
    });
  });
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Rng& rng, const Conv2dParams& p, bool bias)
    : Conv2d(in_channels, out_channels, kernel, kernel, rng, p, bias) {}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, Rng& rng,
               const Conv2dParams& p, bool bias)
    : in_(in_channels), out_(out_channels), p_(p) {
  SM_CHECK(in_channels > 0 && out_channels > 0 && kernel_h > 0 && kernel_w > 0,
           "Conv2d: channels and kernel size must be positive");
  Tensor w = Tensor::empty({out_channels, in_channels, kernel_h, kernel_w});  // (Cout, Cin, kh, kw)
  tensor_fill_normal(w, rng, 0.0, std::sqrt(2.0 / double(out_channels * kernel_h * kernel_w)));
  weight_ = parameter_add("weight", w);
  if (bias) {
    Tensor b = Tensor::empty({out_channels});  // (Cout)
    const double bound = 1.0 / std::sqrt(double(in_channels * kernel_h * kernel_w));
    tensor_fill_uniform(b, rng, -bound, bound);
    bias_ = parameter_add("bias", b);
  }
}

Var Conv2d::forward(const Var& x) { return conv2d(x, weight_, bias_, p_); }

}  // namespace sm
