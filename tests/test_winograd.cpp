// Winograd F(2,3) and F(4,3) (tensor/kernels/cpu/winograd.h) against a float64 direct
// convolution: forward (assign and accumulate, with and without bias) and weight gradient, odd
// sizes and partial edge tiles, paddings 0–2, every GEMM family this CPU runs, 1 and 2 threads
// (bit-identical), filters stored as the input gradient's (transposed, turned 180°), and batches
// split into chunks. The layers reach it through cpu/conv2d.cpp,
// where the op table runs again with each tile size forced (test_ops_winograd2/4) for the
// gradient checks. The last case measures the float32 error at a backbone's sizes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/kernels/cpu/gemm.h"
#include "tensor/kernels/cpu/winograd.h"
#include "tensor/rng.h"

using namespace sm;
using namespace sm::cpu;

namespace {

std::vector<float> random_floats(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.uniform() * 2.0 - 1.0);
  return v;
}

// y[n][k][oh][ow] = Σ_{c,i,j} x[n][c][oh + i − pad_h][ow + j − pad_w] · w[k][c][i][j] (+ b[k]).
std::vector<double> direct_forward(const Conv3x3Shape& s, const std::vector<float>& x, const std::vector<float>& w,
                                   const float* b) {
  const int64_t ho = s.ho(), wo = s.wo();
  std::vector<double> y(size_t(s.n * s.k * ho * wo));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t k = 0; k < s.k; ++k)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          double acc = b ? b[k] : 0.0;
          for (int64_t c = 0; c < s.c; ++c)
            for (int64_t i = 0; i < 3; ++i)
              for (int64_t j = 0; j < 3; ++j) {
                const int64_t ih = oh + i - s.pad_h, iw = ow + j - s.pad_w;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                acc += double(x[size_t(((n * s.c + c) * s.h + ih) * s.w + iw)]) *
                       double(w[size_t(((k * s.c + c) * 3 + i) * 3 + j)]);
              }
          y[size_t(((n * s.k + k) * ho + oh) * wo + ow)] = acc;
        }
  return y;
}

// dw[k][c][i][j] = Σ_{n,oh,ow} gy[n][k][oh][ow] · x[n][c][oh + i − pad_h][ow + j − pad_w].
std::vector<double> direct_dweight(const Conv3x3Shape& s, const std::vector<float>& x, const std::vector<float>& gy) {
  const int64_t ho = s.ho(), wo = s.wo();
  std::vector<double> dw(size_t(s.k * s.c * 9));
  for (int64_t k = 0; k < s.k; ++k)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 3; ++j) {
          double acc = 0;
          for (int64_t n = 0; n < s.n; ++n)
            for (int64_t oh = 0; oh < ho; ++oh)
              for (int64_t ow = 0; ow < wo; ++ow) {
                const int64_t ih = oh + i - s.pad_h, iw = ow + j - s.pad_w;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                acc += double(gy[size_t(((n * s.k + k) * ho + oh) * wo + ow)]) *
                       double(x[size_t(((n * s.c + c) * s.h + ih) * s.w + iw)]);
              }
          dw[size_t(((k * s.c + c) * 3 + i) * 3 + j)] = acc;
        }
  return dw;
}

// max |ours − ref| / max(max |ref|, 1).
double normalised_error(const std::vector<float>& ours, const std::vector<double>& ref) {
  double err = 0, scale = 1;
  for (size_t i = 0; i < ref.size(); ++i) {
    err = std::max(err, std::abs(double(ours[i]) - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return err / scale;
}

std::vector<CpuKernels> families_here() {
  std::vector<CpuKernels> out;
  for (CpuKernels k : {CpuKernels::Scalar, CpuKernels::Avx2, CpuKernels::Avx512})
    if (gemm_kernels_resolve(k) == k) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("winograd: forward and weight gradient match a float64 direct convolution") {
  Rng rng(5);
  // n, c, h, w, k, pad_h, pad_w: single pixels, partial edge tiles in both directions, every padding.
  const Conv3x3Shape shapes[] = {{1, 1, 1, 1, 1, 1, 1},  {2, 3, 5, 7, 4, 1, 1},  {1, 2, 6, 6, 3, 0, 0},
                                 {3, 5, 9, 4, 2, 2, 2},  {2, 4, 8, 8, 5, 1, 1},  {1, 7, 13, 11, 6, 1, 0},
                                 {2, 9, 3, 10, 3, 0, 2}, {2, 33, 17, 19, 40, 1, 1}, {1, 300, 5, 6, 7, 1, 1}};
  for (int m : {2, 4}) {
    CAPTURE(m);
    for (CpuKernels fam : families_here()) {
      CAPTURE(cpu_kernels_name(fam));
      for (const Conv3x3Shape& s : shapes) {
        CAPTURE(s.n);
        CAPTURE(s.c);
        CAPTURE(s.h);
        CAPTURE(s.w);
        CAPTURE(s.k);
        CAPTURE(s.pad_h);
        CAPTURE(s.pad_w);
        const int64_t ny = s.n * s.k * s.ho() * s.wo();
        const auto x = random_floats(size_t(s.n * s.c * s.h * s.w), rng);
        const auto w = random_floats(size_t(s.k * s.c * 9), rng);
        const auto b = random_floats(size_t(s.k), rng);
        const auto gy = random_floats(size_t(ny), rng);
        const double tol = m == 2 ? 1e-5 : 1e-4;

        const auto ref = direct_forward(s, x, w, b.data());
        std::vector<float> y(size_t(ny), 7.f);
        winograd_forward(m, s, x.data(), w.data(), b.data(), y.data(), false, fam, 2);
        CHECK(normalised_error(y, ref) < tol);

        // accumulate onto y0, no bias (the input gradient's use); 1 thread gives the same bits
        const auto y0 = random_floats(size_t(ny), rng);
        auto ref_acc = direct_forward(s, x, w, nullptr);
        for (size_t i = 0; i < ref_acc.size(); ++i) ref_acc[i] += y0[i];
        std::vector<float> ya = y0, ya1 = y0;
        winograd_forward(m, s, x.data(), w.data(), nullptr, ya.data(), true, fam, 2);
        winograd_forward(m, s, x.data(), w.data(), nullptr, ya1.data(), true, fam, 1);
        CHECK(normalised_error(ya, ref_acc) < tol);
        CHECK(ya == ya1);

        // the same filters stored as the input gradient's: wt (C, K, 3, 3) turned 180°
        std::vector<float> wt(w.size());
        for (int64_t k = 0; k < s.k; ++k)
          for (int64_t c = 0; c < s.c; ++c)
            for (int q = 0; q < 9; ++q) wt[size_t((c * s.k + k) * 9 + 8 - q)] = w[size_t((k * s.c + c) * 9 + q)];
        std::vector<float> yt(static_cast<size_t>(ny));
        winograd_forward(m, s, x.data(), wt.data(), b.data(), yt.data(), false, fam, 2, WinogradFilter::Transposed);
        CHECK(yt == y);

        // weight gradient, added to what dw holds
        const auto dw0 = random_floats(size_t(s.k * s.c * 9), rng);
        auto ref_dw = direct_dweight(s, x, gy);
        for (size_t i = 0; i < ref_dw.size(); ++i) ref_dw[i] += dw0[i];
        std::vector<float> dw = dw0, dw1 = dw0;
        winograd_dweight(m, s, x.data(), gy.data(), dw.data(), fam, 2);
        winograd_dweight(m, s, x.data(), gy.data(), dw1.data(), fam, 1);
        CHECK(normalised_error(dw, ref_dw) < tol);
        CHECK(dw == dw1);
      }
    }
  }
}

TEST_CASE("winograd: a batch split into chunks of images gives the same result") {
  Rng rng(8);
  Conv3x3Shape s{5, 6, 10, 9, 7, 1, 1};
  const auto x = random_floats(size_t(s.n * s.c * s.h * s.w), rng);
  const auto w = random_floats(size_t(s.k * s.c * 9), rng);
  const auto gy = random_floats(size_t(s.n * s.k * s.ho() * s.wo()), rng);
  const auto ref = direct_forward(s, x, w, nullptr);
  const auto ref_dw = direct_dweight(s, x, gy);
  for (int m : {2, 4}) {
    CAPTURE(m);
    for (int64_t bytes : {int64_t(1), int64_t(40000), int64_t(64) << 20}) {  // 1 image, 2–3 images, all
      CAPTURE(bytes);
      s.chunk_bytes = bytes;
      std::vector<float> y(ref.size()), dw(ref_dw.size(), 0.f);
      winograd_forward(m, s, x.data(), w.data(), nullptr, y.data(), false, CpuKernels::Scalar, 2);
      winograd_dweight(m, s, x.data(), gy.data(), dw.data(), CpuKernels::Scalar, 2);
      CHECK(normalised_error(y, ref) < 1e-4);
      CHECK(normalised_error(dw, ref_dw) < 1e-4);
    }
  }
}

TEST_CASE("winograd: float32 error at a backbone's sizes (C = K = 64, 32×32, batch 2)") {
  Rng rng(3);
  const Conv3x3Shape s{2, 64, 32, 32, 64, 1, 1};
  // Activations after a ReLU (non-negative) and He-initialised weights, as in the networks.
  auto x = random_floats(size_t(s.n * s.c * s.h * s.w), rng);
  for (float& v : x) v = std::abs(v);
  auto w = random_floats(size_t(s.k * s.c * 9), rng);
  for (float& v : w) v *= float(std::sqrt(6.0 / (9.0 * double(s.c))));
  const auto gy = random_floats(size_t(s.n * s.k * s.ho() * s.wo()), rng);
  const auto ref = direct_forward(s, x, w, nullptr);
  const auto ref_dw = direct_dweight(s, x, gy);
  const CpuKernels best = gemm_kernels_resolve(CpuKernels::Auto);
  for (int m : {2, 4}) {
    std::vector<float> y(ref.size()), dw(ref_dw.size(), 0.f);
    winograd_forward(m, s, x.data(), w.data(), nullptr, y.data(), false, best, 2);
    winograd_dweight(m, s, x.data(), gy.data(), dw.data(), best, 2);
    const double ef = normalised_error(y, ref), ew = normalised_error(dw, ref_dw);
    MESSAGE("F(" << m << ",3) normalised max error vs float64: forward " << ef << ", weight gradient " << ew);
    CHECK(ef < (m == 2 ? 2e-6 : 2e-5));
    CHECK(ew < (m == 2 ? 2e-6 : 2e-5));
  }
}
