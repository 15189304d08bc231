// The float32 GEMM of the CPU kernels (tensor/kernels/cpu/gemm.h) against a float64 triple
// loop: every micro-kernel family this CPU runs, the four transpose combinations, assign and
// accumulate, shapes with edge slivers in every direction (1, MR±1, NR±1, more than one KC slice
// and NC block), 1 and 2 threads (bit-identical), and the im2col-style packer interface. The
// convolutions that use it are tested again through the op table (test_ops: CPU float32 against
// float64, with the fast kernels on) and test_layers (against a direct convolution).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/kernels/cpu/gemm.h"
#include "tensor/rng.h"

using namespace sm;
using namespace sm::cpu;

namespace {

std::vector<CpuKernels> families_here() {
  std::vector<CpuKernels> out;
  for (CpuKernels k : {CpuKernels::Scalar, CpuKernels::Avx2, CpuKernels::Avx512})
    if (gemm_kernels_resolve(k) == k) out.push_back(k);
  return out;
}

std::vector<float> random_floats(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.uniform() * 2.0 - 1.0);
  return v;
}

// C (M, N) = [C +] op(A)·op(B) in float64, A stored (M, K) or (K, M) when ta; B (K, N) or (N, K).
std::vector<double> reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const std::vector<float>& a,
                              const std::vector<float>& b, const std::vector<float>& c0, bool accumulate) {
  std::vector<double> c(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = accumulate ? c0[size_t(i * N + j)] : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double av = ta ? a[size_t(k * M + i)] : a[size_t(i * K + k)];
        const double bv = tb ? b[size_t(j * K + k)] : b[size_t(k * N + j)];
        s += av * bv;
      }
      c[size_t(i * N + j)] = s;
    }
  return c;
}

}  // namespace

TEST_CASE("gemm: every family, transpose and edge shape matches a float64 triple loop") {
  Rng rng(11);
  const int64_t shapes[][3] = {{1, 1, 1},    {8, 32, 16},   {7, 33, 5},   {9, 31, 300}, {13, 17, 257},
                               {64, 65, 576}, {6, 1100, 40}, {50, 3, 600}, {2, 2, 0},    {24, 48, 1}};
  for (CpuKernels fam : families_here()) {
    CAPTURE(cpu_kernels_name(fam));
    for (const auto& s : shapes) {
      const int64_t M = s[0], N = s[1], K = s[2];
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        for (bool accumulate : {false, true}) {
          CAPTURE(M);
          CAPTURE(N);
          CAPTURE(K);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(accumulate);
          const auto a = random_floats(size_t(M * K), rng), b = random_floats(size_t(K * N), rng);
          const auto c0 = random_floats(size_t(M * N), rng);
          const auto want = reference(ta, tb, M, N, K, a, b, c0, accumulate);
          std::vector<float> c1 = c0, c2 = c0;
          // A stored (M, K) or, transposed, (K, M); B (K, N) or (N, K): strides say which.
          const MatRef A = ta ? MatRef{a.data(), 1, M} : MatRef{a.data(), K, 1};
          const MatRef B = tb ? MatRef{b.data(), 1, K} : MatRef{b.data(), N, 1};
          sgemm(M, N, K, A, B, c1.data(), N, accumulate, fam, 1);
          sgemm(M, N, K, A, B, c2.data(), N, accumulate, fam, 2);
          double worst = 0;
          for (size_t i = 0; i < want.size(); ++i) {
            // float32 products summed K times: error grows like sqrt(K)·eps·|terms| at worst K·eps.
            const double tol = 1e-6 * (2.0 + double(K));
            worst = std::max(worst, std::abs(double(c1[i]) - want[i]) / tol);
          }
          CHECK(worst <= 1.0);
          CHECK(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);  // thread count: same bits
        }
      }
    }
  }
}

TEST_CASE("gemm: a custom B packer and a shared packed A give the plain product") {
  Rng rng(12);
  const int64_t M = 40, N = 70, K = 300;
  const auto a = random_floats(size_t(M * K), rng), b = random_floats(size_t(K * N), rng);
  for (CpuKernels fam : families_here()) {
    CAPTURE(cpu_kernels_name(fam));
    const PackedA pa = pack_a(fam, M, K, MatRef{a.data(), K, 1});
    // B(k, j) computed on the fly, as the convolutions' im2col packer does.
    const BPacker packer = [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
      for (int64_t s = 0; s * nr < nc; ++s)
        for (int64_t k = 0; k < kc; ++k)
          for (int64_t j = 0; j < nr; ++j) {
            const int64_t col = j0 + s * nr + j;
            dst[(s * kc + k) * nr + j] = s * nr + j < nc ? b[size_t((k0 + k) * N + col)] : 0.f;
          }
    };
    std::vector<float> c1(size_t(M * N)), c2(size_t(M * N));
    sgemm_packed(pa, N, packer, c1.data(), N, false, 2);
    sgemm(M, N, K, MatRef{a.data(), K, 1}, MatRef{b.data(), N, 1}, c2.data(), N, false, fam, 1);
    CHECK(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("gemm: family resolution: Portable and Scalar stay, Auto picks a fast family, none goes up") {
  CHECK(gemm_kernels_resolve(CpuKernels::Portable) == CpuKernels::Portable);
  CHECK(gemm_kernels_resolve(CpuKernels::Scalar) == CpuKernels::Scalar);
  const CpuKernels best = gemm_kernels_resolve(CpuKernels::Auto);
  CHECK(best != CpuKernels::Auto);
  CHECK(best != CpuKernels::Portable);
  CHECK(int(gemm_kernels_resolve(CpuKernels::Avx2)) <= int(CpuKernels::Avx2));
  MESSAGE("fastest GEMM micro-kernel on this CPU: " << cpu_kernels_name(best));
}

TEST_CASE("gemm: C mapped onto per-image blocks (CMap), blocks that do not divide into slivers") {
  // C (M, N·P) written into an (N, M, P) array: column q = n·P + p lands in image n's block.
  // P = 37 makes slivers straddle two images (the edge path); 64 keeps them inside one.
  Rng rng(13);
  for (CpuKernels fam : families_here())
    for (int64_t P : {37, 64}) {
      CAPTURE(cpu_kernels_name(fam));
      CAPTURE(P);
      const int64_t M = 20, K = 70, N = 3;
      const auto a = random_floats(size_t(M * K), rng), b = random_floats(size_t(K * N * P), rng);
      std::vector<float> plain(size_t(M * N * P)), mapped(size_t(N * M * P), 7.f);
      sgemm(M, N * P, K, MatRef{a.data(), K, 1}, MatRef{b.data(), N * P, 1}, plain.data(), N * P, false, fam, 1);
      const PackedA pa = pack_a(fam, M, K, MatRef{a.data(), K, 1});
      sgemm_packed(pa, N * P, b_packer(MatRef{b.data(), N * P, 1}), CMap{mapped.data(), P, P, M * P}, false, 2);
      int64_t wrong = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t p = 0; p < P; ++p)
            wrong += mapped[size_t((n * M + i) * P + p)] != plain[size_t(i * N * P + n * P + p)];
      CHECK(wrong == 0);
    }
}
