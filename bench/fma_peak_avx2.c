/* fma_peak_avx2: the float32 FMA peak of the cores with 256-bit vectors, for machines without
 * AVX-512 (where ../shared/bench/cpu_peak.c stops with SIGILL in its 512-bit loop). Each thread
 * runs 12 independent chains of vfmadd on 8-float vectors (enough to cover 2 FMA pipes × 4–5
 * cycles of latency), so the loop is bound by FMA throughput only; 16 flops per FMA.
 *   gcc -O3 -funroll-all-loops -mavx2 -mfma -fopenmp bench/fma_peak_avx2.c -o fma_peak_avx2
 *   OMP_NUM_THREADS=2 ./fma_peak_avx2
 * -funroll-all-loops keeps the 12 accumulators in registers (at -O2 the inner loop over them
 * stays a loop through memory and measures a third of the peak). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

static double seconds_for(long iterations) {
  __m256 acc[12];
  const __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps((float)i);
  const double t0 = omp_get_wtime();
  for (long k = 0; k < iterations; ++k)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  const double t = omp_get_wtime() - t0;
  float sink = 0;
  for (int i = 0; i < 12; ++i) sink += acc[i][0];
  if (sink == 42.f) printf(" ");  /* keeps the chains alive */
  return t;
}

int main(void) {
  const long iterations = 200000000;
  double gflops = 0;
#pragma omp parallel reduction(+ : gflops)
  {
    seconds_for(iterations / 10); /* warm-up: clocks up */
    gflops += (double)iterations * 12 * 8 * 2 / seconds_for(iterations) / 1e9;
  }
  printf("{\"bench\":\"fma_peak_avx2\",\"threads\":%d,\"fma256_gflops\":%.1f}\n", omp_get_max_threads(), gflops);
  return 0;
}
