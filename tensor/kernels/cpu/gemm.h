// Single-precision matrix multiply for the CPU kernels, with packed panels and vector
// micro-kernels chosen at run time (the fast path of the convolutions):
//
//   C (M, N) = [C +] A (M, K) · B (K, N)
//
// How (the BLIS loop nest, docs/performance.md):
//   pack A once into MR-tall slivers, k-major, per KC-deep slice (PackedA; the conv weights are
//   packed once per call and shared by every image and thread)
//   for each NC-wide block of columns, for each KC-deep slice of K:
//     pack B (KC, NC) into NR-wide slivers, k-major (BPacker: a strided matrix, or im2col
//     straight from the image, so that a convolution copies its input once, not twice)
//     for each B sliver, for each A sliver: micro-kernel = an MR×NR block of C held in
//     registers, KC rank-1 updates (one B row of NR floats times MR broadcast A values).
// The micro-kernel is AVX-512 (8×32), AVX2+FMA (6×16) or plain C++ (8×16), whichever the CPU
// runs and exec_context().cpu_kernels allows; the others are compiled in with target attributes,
// so one portable binary carries all of them. Eigen's GEMM stays the reference (Portable).
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>

#include "tensor/kernels/context.h"

namespace sm::cpu {

// A matrix operand: element (i, j) is data[i * rs + j * cs].
struct MatRef {
  const float* data;
  int64_t rs, cs;
};

// The micro-kernel family `want` resolves to on this CPU: Auto → the best one it runs; a
// family it cannot run → the best one below it. Portable stays Portable.
CpuKernels gemm_kernels_resolve(CpuKernels want);
const char* cpu_kernels_name(CpuKernels k);

// A (M, K) packed for `kernels` (a resolved fast family): for each KC slice of K, the MR-row
// slivers of all of M, zero-padded to whole slivers. Read-only once made: share it freely.
struct PackedA {
  CpuKernels kernels = CpuKernels::Scalar;
  int64_t m = 0, k = 0, mpad = 0;  // mpad: M rounded up to whole slivers
  int mr = 8;                      // rows per sliver: 8, or 6 for AVX2
  std::shared_ptr<float> data;
  // Where A(i, k) lives (i < mpad: rows past M are padding, zero): an operand computed on the fly
  // (Winograd's transformed weights) is written here directly; rows i..i+mr−1 of one sliver are
  // contiguous for each k.
  int64_t offset(int64_t i, int64_t kk) const {
    const int64_t pc = kk / kGemmKC * kGemmKC, kc = std::min(kGemmKC, k - pc);
    return mpad * pc + (i / mr) * mr * kc + (kk - pc) * mr + i % mr;
  }
  static constexpr int64_t kGemmKC = 256;  // the K slice of the loop nest (gemm.cpp: kKC)
};
// An uninitialised PackedA of A (M, K) for `kernels`, to be filled through offset() (padding rows too).
PackedA packed_a_alloc(CpuKernels kernels, int64_t M, int64_t K);
PackedA pack_a(CpuKernels kernels, int64_t M, int64_t K, MatRef A);
// A (M, N·P) = [a_1 … a_N] from a (N, M, P) array (one (M, P) block per image, side by side):
// A(i, n·P + p) = a[(n·M + i)·P + p]. For the conv weight gradient's batch-wide product.
PackedA pack_a_batched(CpuKernels kernels, int64_t M, int64_t P, int64_t N, const float* a);

// Writes B rows [k0, k0+kc) × columns [j0, j0+nc) as nr-wide slivers: dst[s·nr·kc + k·nr + j] =
// B(k0 + k, j0 + s·nr + j), zero for the columns of the last sliver past nc.
using BPacker = std::function<void(int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst)>;
BPacker b_packer(MatRef B);

// C (M, N) = (accumulate ? C : 0) + A·B. threads > 1 splits the columns of C (or its rows when
// C is narrow) over OpenMP threads, whole slivers each; call it with 1 inside a parallel region
// (it runs serially there anyway). Each element of C is summed in the same order for any thread
// count: results do not depend on it.
void sgemm_packed(const PackedA& A, int64_t N, const BPacker& B, float* C, int64_t ldc, bool accumulate, int threads);

// Where the columns of C live when they are not one row-major matrix: column q of row i is at
// c + (q / block)·block_stride + i·ldc + q % block. With a batch of images side by side (block =
// P pixels, block_stride = one image's output), one GEMM writes every image's (Cout, P) output.
struct CMap {
  float* c;
  int64_t ldc;
  int64_t block = INT64_MAX;  // default: one block, a plain row-major C
  int64_t block_stride = 0;
  float* at(int64_t i, int64_t q) const { return c + (q / block) * block_stride + i * ldc + q % block; }
};
void sgemm_packed(const PackedA& A, int64_t N, const BPacker& B, const CMap& C, bool accumulate, int threads);
void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc, bool accumulate,
           CpuKernels kernels, int threads);

// The reference product (Eigen's GEMM, which threads itself outside parallel regions): C (M, N)
// = [C +] op(A) · op(B), A and B stored row-major with row strides lda, ldb, op transposing when
// ta / tb is set (A stored (M, K), or (K, M) when ta). The convolutions use it for float64 and
// for the Portable family; the fast families go through sgemm / sgemm_packed.
void matmul_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
                      int64_t ldb, float* c, int64_t ldc, bool accumulate);
void matmul_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* a, int64_t lda,
                      const double* b, int64_t ldb, double* c, int64_t ldc, bool accumulate);

}  // namespace sm::cpu
