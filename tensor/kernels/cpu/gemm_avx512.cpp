// AVX-512 micro-kernel of the float32 GEMM (contract: cpu/gemm_microkernels.h): an 8×32 block
// of C in 16 zmm accumulators. Per k: two 16-float loads of the B row, eight broadcasts of the
// A column, 16 FMAs. 16 independent accumulator chains cover the FMA latency (4 cycles) times
// the issue rate (one 512-bit FMA per cycle on Zen 4, two on server Intel cores), and the 8·16
// = 128 multiply-adds per k cost 2 B loads + 8 broadcasts: compute-bound, not load-bound.
// Compiled for AVX-512 by target attribute only; called only when the CPU reports AVX-512F.
#include <immintrin.h>

#include "tensor/kernels/cpu/gemm_microkernels.h"

namespace sm::cpu::gemm_detail {

#define SM_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))

SM_TARGET_AVX512 void microkernel_avx512_8x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                              bool accumulate) {
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(),
         c11 = _mm512_setzero_ps(), c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(),
         c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c40 = _mm512_setzero_ps(),
         c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps(),
         c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(),
         c71 = _mm512_setzero_ps();
  // One rank-1 update: row i of the block += A(i, k) · B(k, 0..31).
#define SM_ROW(i)                                  \
  {                                                \
    const __m512 ai = _mm512_set1_ps(a[i]);        \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);    \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);    \
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    SM_ROW(0) SM_ROW(1) SM_ROW(2) SM_ROW(3) SM_ROW(4) SM_ROW(5) SM_ROW(6) SM_ROW(7)
    a += 8;
    b += 32;
  }
#undef SM_ROW
  // Write back: C = acc, or C += acc.
#define SM_STORE(i)                                                                       \
  {                                                                                       \
    float* ci = c + (i) * ldc;                                                            \
    if (accumulate) {                                                                     \
      c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(ci));                             \
      c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(ci + 16));                        \
    }                                                                                     \
    _mm512_storeu_ps(ci, c##i##0);                                                        \
    _mm512_storeu_ps(ci + 16, c##i##1);                                                   \
  }
  SM_STORE(0) SM_STORE(1) SM_STORE(2) SM_STORE(3) SM_STORE(4) SM_STORE(5) SM_STORE(6) SM_STORE(7)
#undef SM_STORE
}

}  // namespace sm::cpu::gemm_detail
