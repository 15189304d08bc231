// The register-blocked inner loops of cpu/gemm.cpp, one per instruction set, each in its own
// file compiled for that set through function target attributes (gemm_avx512.cpp,
// gemm_avx2.cpp; the plain C++ one is in gemm.cpp). Internal to the GEMM.
//
// Contract of a micro-kernel with MR rows and NR columns (its name says MRxNR):
//   a: MR·kc floats, k-major (a[k·MR + i] = A(i, k)), the packed A sliver
//   b: NR·kc floats, k-major (b[k·NR + j] = B(k, j)), the packed B sliver, 64-byte aligned
//   c: an MR×NR block of C with row stride ldc
//   C(i, j) = (accumulate ? C(i, j) : 0) + Σ_{k<kc} A(i, k)·B(k, j)
// Summation order: k ascending, one fused multiply-add per k (so results do not depend on where
// the block sits in C, nor on the thread that runs it).
#pragma once
#include <cstdint>

namespace sm::cpu::gemm_detail {

using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);

void microkernel_avx512_8x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
void microkernel_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);

}  // namespace sm::cpu::gemm_detail
