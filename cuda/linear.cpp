// Linear (y = x Wᵀ + b) through cuBLAS SGEMM; CPU twin layers/linear.cpp. Row-major matrices
// are column-major transposes, so y (N, out) row-major is yᵀ = W xᵀ in cuBLAS's terms. TF32
// tensor-core math unless strict (set on the handle by cublas_get). Host code only.
#include <climits>

#include "cuda/context.h"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {
void linear_check(const char* op, int64_t n, int64_t in, int64_t out) {
  SM_CHECK(n > 0 && in > 0 && out > 0, op << ": empty shape, x (" << n << ", " << in << "), weight (" << out << ", " << in << ")");
  SM_CHECK(n < INT_MAX && in < INT_MAX && out < INT_MAX, op << ": sizes beyond cuBLAS's int range");
}
}  // namespace

void linear_forward(int64_t n, int64_t in, int64_t out, const float* x, const float* weight, const float* bias,
                    float* y, Stream s) {
  linear_check("linear_forward (CUDA)", n, in, out);
  SM_CHECK(x && weight && y, "linear_forward (CUDA): null x, weight or y");
  cudaStream_t st = stream_resolve(s);
  cublasHandle_t h = cublas_get(st);
  const float one = 1.f, zero = 0.f;
  // y_cm (out × N) = W_cmᵀ (out × in) · x_cm (in × N); W_cm is (in × out), ld in.
  SM_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, int(out), int(n), int(in), &one, weight, int(in), x, int(in),
                              &zero, y, int(out)));
  if (bias) {
    // y += 1_N ⊗ b: a rank-1 update, y_cm += b · 1ᵀ.
    DeviceBuffer ones(size_t(n) * sizeof(float));
    fill_f32(ones.as<float>(), n, 1.f, st);
    SM_CUBLAS_CHECK(cublasSger(h, int(out), int(n), &one, bias, 1, ones.as<float>(), 1, y, int(out)));
  }
}

void linear_backward(int64_t n, int64_t in, int64_t out, const float* x, const float* weight, const float* dy,
                     float* dx, float* dweight, float* dbias, Stream s) {
  linear_check("linear_backward (CUDA)", n, in, out);
  SM_CHECK(dy && (!dx || weight) && (!dweight || x), "linear_backward (CUDA): null input for a requested gradient");
  cudaStream_t st = stream_resolve(s);
  cublasHandle_t h = cublas_get(st);
  const float one = 1.f;  // beta = 1: gradients accumulate
  // dx (N, in) = dy W: dx_cm (in × N) = W_cm (in × out) · dy_cm (out × N).
  if (dx)
    SM_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, int(in), int(n), int(out), &one, weight, int(in), dy,
                                int(out), &one, dx, int(in)));
  // dW (out, in) = dyᵀ x: dW_cm (in × out) = x_cm (in × N) · dy_cmᵀ (N × out).
  if (dweight)
    SM_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, int(in), int(out), int(n), &one, x, int(in), dy, int(out),
                                &one, dweight, int(in)));
  // db (out) = Σ_n dy[n, :]: the per-channel sums of dy viewed as (N, out, 1), fixed order.
  if (dbias) channel_sum_add(n, out, 1, dy, dbias, st);
}

}  // namespace sm::cuda
