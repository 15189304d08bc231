// AVX2 + FMA micro-kernel of the float32 GEMM (contract: cpu/gemm_microkernels.h): a 6×16
// block of C in 12 ymm accumulators; with the two B vectors and one broadcast that is 15 of the
// 16 ymm registers (an 8-row block would need 19 and spill). Per k: 2 loads, 6 broadcasts,
// 12 FMAs; 12 independent chains cover the FMA latency (4 cycles) at two FMAs per cycle.
// Compiled for AVX2 + FMA by target attribute only; called only when the CPU has both.
#include <immintrin.h>

#include "tensor/kernels/cpu/gemm_microkernels.h"

namespace sm::cpu::gemm_detail {

#define SM_TARGET_AVX2 __attribute__((target("avx2,fma")))

SM_TARGET_AVX2 void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                          bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#define SM_ROW(i)                                  \
  {                                                \
    const __m256 ai = _mm256_broadcast_ss(a + i);  \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);    \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);    \
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    SM_ROW(0) SM_ROW(1) SM_ROW(2) SM_ROW(3) SM_ROW(4) SM_ROW(5)
    a += 6;
    b += 16;
  }
#undef SM_ROW
#define SM_STORE(i)                                                  \
  {                                                                  \
    float* ci = c + (i) * ldc;                                       \
    if (accumulate) {                                                \
      c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(ci));        \
      c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(ci + 8));    \
    }                                                                \
    _mm256_storeu_ps(ci, c##i##0);                                   \
    _mm256_storeu_ps(ci + 8, c##i##1);                               \
  }
  SM_STORE(0) SM_STORE(1) SM_STORE(2) SM_STORE(3) SM_STORE(4) SM_STORE(5)
#undef SM_STORE
}

}  // namespace sm::cpu::gemm_detail
