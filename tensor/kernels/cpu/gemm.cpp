// Float32 GEMM with packed panels (contract and loop nest: cpu/gemm.h; micro-kernels:
// cpu/gemm_microkernels.h).
//
// Why packing: the micro-kernel reads A and B as unit-stride streams that fit the caches. B's
// KC×NC panel (1 MiB) is packed once per KC slice and read by every MC block of A from L2/L3;
// one KC×NR sliver of it (32 KiB at most) is the part the micro-kernel re-reads from L1 for each
// MR-row sliver of A. Packing also absorbs transposes and strides (im2col tiles, Wᵀ, colᵀ) and
// zero-pads the edges, so the micro-kernel has no edge cases: an edge block of C is computed
// into a small buffer and only its valid part written back.
#include "tensor/kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "tensor/kernels/cpu/gemm_microkernels.h"

namespace sm::cpu {

namespace gemm_detail {

// Plain C++ micro-kernel (8×16), the fallback for CPUs without AVX2 + FMA. The compiler
// vectorises the j loop for whatever the build targets (SSE2 at least on x86-64).
void microkernel_scalar_8x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  float acc[8][16] = {};
  for (int64_t k = 0; k < kc; ++k, a += 8, b += 16)
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 16; ++j) acc[i][j] += a[i] * b[j];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 16; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

}  // namespace gemm_detail

namespace {

using gemm_detail::MicroKernel;

struct KernelShape {
  int mr, nr;
  MicroKernel fn;
};

KernelShape kernel_shape(CpuKernels k) {
  switch (k) {
    case CpuKernels::Avx512: return {8, 32, gemm_detail::microkernel_avx512_8x32};
    case CpuKernels::Avx2: return {6, 16, gemm_detail::microkernel_avx2_6x16};
    default: return {8, 16, gemm_detail::microkernel_scalar_8x16};
  }
}

// Cache blocking (Zen 4: 32 KiB L1d, 1 MiB L2 per core). KC·NR·4 B ≤ 32 KiB keeps one B sliver
// in L1; MC·KC·4 B = 128 KiB of A slivers stay in L2 while a B panel's slivers pass by;
// KC·NC·4 B = 1 MiB of packed B in L2/L3.
constexpr int64_t kKC = PackedA::kGemmKC, kMC = 128, kNC = 1024;

// 64-byte aligned scratch that grows and is kept per thread (OpenMP threads persist).
struct Scratch {
  std::unique_ptr<float, decltype(&std::free)> data{nullptr, &std::free};
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!data) throw std::bad_alloc();
      size = bytes / sizeof(float);
    }
    return data.get();
  }
};

// dst[k·NR + j] = src[k·rs + j] for k < kc: rows of NR contiguous floats (a constant-size copy
// the compiler turns into a few vector moves).
template <int NR> void copy_rows(int64_t kc, const float* src, int64_t rs, float* dst) {
  for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * NR, src + k * rs, NR * sizeof(float));
}

// packed[s][k][j] = B(k0 + k, j0 + s·nr + j) for the kc rows and nc columns; columns past nc are 0.
void pack_b_strided(const MatRef& B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* packed) {
  for (int64_t s = 0; s * nr < nc; ++s) {
    const int64_t js = j0 + s * nr, w = std::min<int64_t>(nr, nc - s * nr);
    float* dst = packed + s * nr * kc;
    if (B.cs == 1 && w == nr && (nr == 16 || nr == 32)) {  // row-major B: nr contiguous floats a row
      const float* src = B.data + k0 * B.rs + js;
      if (nr == 32)
        copy_rows<32>(kc, src, B.rs, dst);
      else
        copy_rows<16>(kc, src, B.rs, dst);
    } else if (B.rs == 1) {  // column-major B (a transposed row-major matrix): read down columns
      for (int64_t j = 0; j < w; ++j) {
        const float* src = B.data + (js + j) * B.cs + k0;
        for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = src[k];
      }
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = w; j < nr; ++j) dst[k * nr + j] = 0.f;
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B.data + (k0 + k) * B.rs + js * B.cs;
        for (int64_t j = 0; j < w; ++j) dst[k * nr + j] = src[j * B.cs];
        for (int64_t j = w; j < nr; ++j) dst[k * nr + j] = 0.f;
      }
    }
  }
}

// One KC slice of A: packed[s][k][i] = A(s·MR + i, k0 + k) for all M rows; rows past M are 0.
template <int MR> void pack_a_slice(int64_t M, int64_t k0, int64_t kc, const MatRef& A, float* packed) {
  // The conv weights (up to 2.4 M floats) are packed on the calling thread before the images are
  // split over the threads: share that work too (each sliver is written by one thread).
#pragma omp parallel for schedule(static) if (M * kc > (1 << 16))
  for (int64_t s = 0; s < (M + MR - 1) / MR; ++s) {
    const int64_t is = s * MR, h = std::min<int64_t>(MR, M - is);
    float* dst = packed + s * MR * kc;
    if (A.rs == 1 && h == MR) {  // column-major A (Wᵀ): MR contiguous floats per k
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, A.data + (k0 + k) * A.cs + is, MR * sizeof(float));
      continue;
    }
    for (int64_t i = 0; i < h; ++i) {
      const float* src = A.data + (is + i) * A.rs + k0 * A.cs;
      if (A.cs == 1)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = src[k];
      else
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = src[k * A.cs];
    }
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t i = h; i < MR; ++i) dst[k * MR + i] = 0.f;
  }
}

// One KC slice of the batched A of pack_a_batched: columns q = n·P + p in [k0, k0 + kc), cut
// at image boundaries into contiguous runs of one image's rows.
template <int MR>
void pack_a_batched_slice(int64_t M, int64_t P, const float* a, int64_t k0, int64_t kc, float* packed) {
#pragma omp parallel for schedule(static) if (M * kc > (1 << 16))
  for (int64_t s = 0; s < (M + MR - 1) / MR; ++s) {
    const int64_t is = s * MR, h = std::min<int64_t>(MR, M - is);
    float* dst = packed + s * MR * kc;
    for (int64_t i = 0; i < h; ++i)
      for (int64_t q = k0; q < k0 + kc;) {
        const int64_t n = q / P, p = q % P, len = std::min(k0 + kc - q, P - p);
        const float* src = a + (n * M + is + i) * P + p;
        float* out = dst + (q - k0) * MR + i;
        for (int64_t t = 0; t < len; ++t) out[t * MR] = src[t];
        q += len;
      }
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t i = h; i < MR; ++i) dst[k * MR + i] = 0.f;
  }
}

// One thread's share: C rows [r0, r1) (whole slivers, r1 may be M) × columns [c0, c1).
template <int MR, int NR>
void gemm_serial(MicroKernel kernel, const PackedA& A, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                 const BPacker& B, const CMap& C, bool accumulate) {
  thread_local Scratch b_scratch;
  const int64_t ldc = C.ldc;
  float* bp = b_scratch.get(size_t(kKC) * ((kNC + NR - 1) / NR * NR));
  alignas(64) float edge[MR * NR];
  const float* apack = A.data.get();
  for (int64_t jc = c0; jc < c1; jc += kNC) {
    const int64_t nc = std::min(kNC, c1 - jc);
    for (int64_t pc = 0; pc < A.k; pc += kKC) {
      const int64_t kc = std::min(kKC, A.k - pc);
      const bool add = accumulate || pc > 0;  // the first K slice assigns unless asked to add
      B(pc, kc, jc, nc, NR, bp);
      const float* aslice = apack + A.mpad * pc;  // this K slice's slivers: MR·kc floats each
      constexpr int64_t mc = kMC / MR * MR;      // whole slivers
      for (int64_t ic = r0; ic < r1; ic += mc) {  // MC rows of A at a time stay in L2
        const int64_t ie = std::min(r1, ic + mc);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const float* bs = bp + (jr / NR) * NR * kc;
          const int64_t w = std::min<int64_t>(NR, nc - jr);
          for (int64_t ir = ic; ir < ie; ir += MR) {
            const float* as = aslice + ir * kc;  // sliver ir/MR: at (ir/MR)·MR·kc
            const int64_t h = std::min<int64_t>(MR, A.m - ir);
            const int64_t q0 = jc + jr, b0 = q0 / C.block;  // first column, its block
            if (h == MR && w == NR && (q0 + NR - 1) / C.block == b0) {
              kernel(kc, as, bs, C.c + b0 * C.block_stride + ir * ldc + (q0 - b0 * C.block), ldc, add);
            } else {  // edge or block-straddling: compute the whole MR×NR, keep the valid h×w
              kernel(kc, as, bs, edge, NR, false);
              for (int64_t j = 0; j < w; ++j) {
                float* cj = C.at(ir, q0 + j);
                for (int64_t i = 0; i < h; ++i) cj[i * ldc] = add ? cj[i * ldc] + edge[i * NR + j] : edge[i * NR + j];
              }
            }
          }
        }
      }
    }
  }
}

template <int MR, int NR>
void gemm_threads(MicroKernel kernel, const PackedA& A, int64_t N, const BPacker& B, const CMap& C, bool accumulate,
                  int threads) {
  const int64_t M = A.m;
  if (A.k == 0) {  // A·B = 0
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t q = 0; q < N; ++q) *C.at(i, q) = 0.f;
    return;
  }
  // Split C into `parts` column ranges (rows when C is narrow), whole slivers each, one per
  // thread: no barrier inside, and each element's sum is the same as in the serial loop.
  const int64_t col_slivers = (N + NR - 1) / NR, row_slivers = (M + MR - 1) / MR;
  const bool by_cols = col_slivers >= 2 * threads || col_slivers >= row_slivers;
  const int64_t slivers = by_cols ? col_slivers : row_slivers;
  const int parts = int(std::min<int64_t>(threads, slivers));
  if (parts <= 1 || omp_in_parallel()) {
    gemm_serial<MR, NR>(kernel, A, 0, M, 0, N, B, C, accumulate);
    return;
  }
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int p = 0; p < parts; ++p) {
    const int64_t s0 = slivers * p / parts, s1 = slivers * (p + 1) / parts;
    if (by_cols)
      gemm_serial<MR, NR>(kernel, A, 0, M, s0 * NR, std::min(N, s1 * NR), B, C, accumulate);
    else
      gemm_serial<MR, NR>(kernel, A, s0 * MR, std::min(M, s1 * MR), 0, N, B, C, accumulate);
  }
}

bool cpu_runs(CpuKernels k) {
#if defined(__x86_64__) || defined(__i386__)
  switch (k) {
    case CpuKernels::Avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case CpuKernels::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default: return true;
  }
#else
  return k == CpuKernels::Scalar || k == CpuKernels::Portable;
#endif
}

}  // namespace

CpuKernels gemm_kernels_resolve(CpuKernels want) {
  if (want == CpuKernels::Portable || want == CpuKernels::Scalar) return want;
  if (want == CpuKernels::Auto) want = CpuKernels::Avx512;
  for (CpuKernels k : {CpuKernels::Avx512, CpuKernels::Avx2})
    if (int(k) <= int(want) && cpu_runs(k)) return k;
  return CpuKernels::Scalar;
}

const char* cpu_kernels_name(CpuKernels k) {
  switch (k) {
    case CpuKernels::Auto: return "auto";
    case CpuKernels::Portable: return "portable";
    case CpuKernels::Scalar: return "scalar";
    case CpuKernels::Avx2: return "avx2";
    case CpuKernels::Avx512: return "avx512";
  }
  return "?";
}

}  // namespace sm::cpu

namespace sm {
const char* cpu_kernels_in_use() { return cpu::cpu_kernels_name(cpu::gemm_kernels_resolve(exec_context().cpu_kernels)); }
}  // namespace sm

namespace sm::cpu {

// An empty PackedA of A (M, K) for `kernels`: sizes and the 64-byte aligned buffer.
PackedA packed_a_alloc(CpuKernels kernels, int64_t M, int64_t K) {
  PackedA p;
  p.kernels = kernels;
  p.m = M;
  p.k = K;
  const int mr = kernel_shape(kernels).mr;
  p.mr = mr;
  p.mpad = (M + mr - 1) / mr * mr;
  const size_t n = size_t(std::max<int64_t>(1, p.mpad * K));
  p.data.reset(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64)), &std::free);
  if (!p.data) throw std::bad_alloc();
  return p;
}

PackedA pack_a(CpuKernels kernels, int64_t M, int64_t K, MatRef A) {
  PackedA p = packed_a_alloc(kernels, M, K);
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    float* dst = p.data.get() + p.mpad * pc;
    if (kernel_shape(kernels).mr == 6)
      pack_a_slice<6>(M, pc, kc, A, dst);
    else
      pack_a_slice<8>(M, pc, kc, A, dst);
  }
  return p;
}

PackedA pack_a_batched(CpuKernels kernels, int64_t M, int64_t P, int64_t N, const float* a) {
  PackedA p = packed_a_alloc(kernels, M, N * P);
  for (int64_t pc = 0; pc < p.k; pc += kKC) {
    const int64_t kc = std::min(kKC, p.k - pc);
    float* dst = p.data.get() + p.mpad * pc;
    if (kernel_shape(kernels).mr == 6)
      pack_a_batched_slice<6>(M, P, a, pc, kc, dst);
    else
      pack_a_batched_slice<8>(M, P, a, pc, kc, dst);
  }
  return p;
}

BPacker b_packer(MatRef B) {
  return [B](int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
    pack_b_strided(B, k0, kc, j0, nc, nr, dst);
  };
}

void sgemm_packed(const PackedA& A, int64_t N, const BPacker& B, float* C, int64_t ldc, bool accumulate, int threads) {
  sgemm_packed(A, N, B, CMap{C, ldc}, accumulate, threads);
}

void sgemm_packed(const PackedA& A, int64_t N, const BPacker& B, const CMap& C, bool accumulate, int threads) {
  if (A.m <= 0 || N <= 0) return;
  const KernelShape ks = kernel_shape(A.kernels);
  switch (A.kernels) {
    case CpuKernels::Avx512: return gemm_threads<8, 32>(ks.fn, A, N, B, C, accumulate, threads);
    case CpuKernels::Avx2: return gemm_threads<6, 16>(ks.fn, A, N, B, C, accumulate, threads);
    default: return gemm_threads<8, 16>(ks.fn, A, N, B, C, accumulate, threads);
  }
}

void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc, bool accumulate,
           CpuKernels kernels, int threads) {
  if (M <= 0 || N <= 0) return;
  sgemm_packed(pack_a(kernels, M, K, A), N, b_packer(B), C, ldc, accumulate, threads);
}

}  // namespace sm::cpu
