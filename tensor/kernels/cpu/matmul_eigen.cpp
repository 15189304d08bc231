// matmul_reference (contract: cpu/gemm.h): Eigen's GEMM on row-major maps with an
// outer stride, the reference every fast float32 path is tested against; float64 always here.
// GCC 12 reports Eigen's AVX-512 transposing pack (double, strided maps) as maybe-uninitialised
// inside its own intrinsics headers: a false positive of _mm512_undefined_pd.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include "tensor/kernels/cpu/gemm.h"

namespace sm::cpu {

namespace {

template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapS = Eigen::Map<MatR<T>, 0, Eigen::OuterStride<>>;
template <class T> using MapSC = Eigen::Map<const MatR<T>, 0, Eigen::OuterStride<>>;

template <class T>
void matmul_eigen(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* a, int64_t lda, const T* b, int64_t ldb,
                  T* c, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  MapS<T> cm(c, M, N, Eigen::OuterStride<>(ldc));
  const MapSC<T> am(a, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  const MapSC<T> bm(b, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  auto run = [&](const auto& lhs, const auto& rhs) {
    if (accumulate)
      cm.noalias() += lhs * rhs;
    else
      cm.noalias() = lhs * rhs;
  };
  if (!ta && !tb) run(am, bm);
  if (!ta && tb) run(am, bm.transpose());
  if (ta && !tb) run(am.transpose(), bm);
  if (ta && tb) run(am.transpose(), bm.transpose());
}

}  // namespace

void matmul_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
                      int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  matmul_eigen<float>(ta, tb, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
}

void matmul_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* a, int64_t lda,
                      const double* b, int64_t ldb, double* c, int64_t ldc, bool accumulate) {
  matmul_eigen<double>(ta, tb, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
}

}  // namespace sm::cpu
