// Elementwise kernels (fill, axpy, scale, ReLU, add, add+ReLU) and deterministic sums; the CPU
// twins are tensor/ops.cpp, layers/activation.cpp and layers/elementwise.cpp.
#include <vector>

#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

template <class T> __global__ void fill_kernel(T* x, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] = v;
}

__global__ void axpy_kernel(int64_t n, float a, const float* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += a * x[i];
}

__global__ void scale_kernel(int64_t n, float a, float* x) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] *= a;
}

__global__ void relu_forward_kernel(int64_t n, const float* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] > 0.f ? x[i] : 0.f;
}

__global__ void relu_backward_kernel(int64_t n, const float* x, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    if (x[i] > 0.f) dx[i] += dy[i];
}

__global__ void add_kernel(int64_t n, const float* a, const float* b, float* y, bool relu) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = a[i] + b[i];
    y[i] = relu ? (v > 0.f ? v : 0.f) : v;
  }
}

__global__ void add_relu_backward_kernel(int64_t n, const float* y, const float* dy, float* da, float* db) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (!(y[i] > 0.f)) continue;
    if (da) da[i] += dy[i];
    if (db) db[i] += dy[i];
  }
}

// Stage 1: block b sums a fixed slice pattern (grid-stride) into partial[b], in double.
__global__ void sum_partial_kernel(int64_t n, const float* x, bool squares, double* partial) {
  __shared__ double smem[32];
  double acc = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = double(x[i]);
    acc += squares ? v * v : v;
  }
  const double t = block_sum(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = t;
}

// Stage 2: one block sums the partials.
__global__ void sum_final_kernel(int64_t count, const double* partial, double* out) {
  __shared__ double smem[32];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  const double t = block_sum(acc, smem);
  if (threadIdx.x == 0) *out = t;
}

void check_n(const char* op, int64_t n) { SM_CHECK(n >= 0, op << ": negative size " << n); }

double sum_impl(const char* op, int64_t n, const float* x, bool squares, Stream s) {
  check_n(op, n);
  if (n == 0) return 0.0;
  SM_CHECK(x, op << ": null pointer");
  cudaStream_t st = stream_resolve(s);
  // The grid depends only on n: the summation order, hence the result, is reproducible.
  const unsigned blocks = std::min<unsigned>(grid_for(n), 1024);
  DeviceBuffer partial((blocks + 1) * sizeof(double));
  sum_partial_kernel<<<blocks, kThreads, 0, st>>>(n, x, squares, partial.as<double>());
  SM_LAUNCH_CHECK("sum_partial_kernel");
  double* out = partial.as<double>() + blocks;
  sum_final_kernel<<<1, 1024, 0, st>>>(blocks, partial.as<double>(), out);
  SM_LAUNCH_CHECK("sum_final_kernel");
  double host = 0;
  SM_CUDA_CHECK(cudaMemcpyAsync(&host, out, sizeof(double), cudaMemcpyDeviceToHost, st));
  SM_CUDA_CHECK(cudaStreamSynchronize(st));
  return host;
}

}  // namespace

void fill_f32(float* x, int64_t n, float value, Stream s) {
  check_n("fill_f32", n);
  if (n == 0) return;
  fill_kernel<float><<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(x, n, value);
  SM_LAUNCH_CHECK("fill_kernel<float>");
}

void fill_f64(double* x, int64_t n, double value, Stream s) {
  check_n("fill_f64", n);
  if (n == 0) return;
  fill_kernel<double><<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(x, n, value);
  SM_LAUNCH_CHECK("fill_kernel<double>");
}

void axpy(int64_t n, float alpha, const float* x, float* y, Stream s) {
  check_n("axpy", n);
  if (n == 0) return;
  axpy_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, alpha, x, y);
  SM_LAUNCH_CHECK("axpy_kernel");
}

void scale(int64_t n, float alpha, float* x, Stream s) {
  check_n("scale", n);
  if (n == 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, alpha, x);
  SM_LAUNCH_CHECK("scale_kernel");
}

double sum(int64_t n, const float* x, Stream s) { return sum_impl("sum", n, x, false, s); }
double sum_squares(int64_t n, const float* x, Stream s) { return sum_impl("sum_squares", n, x, true, s); }

void relu_forward(int64_t n, const float* x, float* y, Stream s) {
  check_n("relu_forward", n);
  if (n == 0) return;
  relu_forward_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, x, y);
  SM_LAUNCH_CHECK("relu_forward_kernel");
}

void relu_backward(int64_t n, const float* x, const float* dy, float* dx, Stream s) {
  check_n("relu_backward", n);
  if (n == 0 || !dx) return;
  relu_backward_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, x, dy, dx);
  SM_LAUNCH_CHECK("relu_backward_kernel");
}

void add_forward(int64_t n, const float* a, const float* b, float* y, Stream s) {
  check_n("add_forward", n);
  if (n == 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, a, b, y, false);
  SM_LAUNCH_CHECK("add_kernel");
}

void add_relu_forward(int64_t n, const float* a, const float* b, float* y, Stream s) {
  check_n("add_relu_forward", n);
  if (n == 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, a, b, y, true);
  SM_LAUNCH_CHECK("add_kernel(relu)");
}

void add_relu_backward(int64_t n, const float* y, const float* dy, float* da, float* db, Stream s) {
  check_n("add_relu_backward", n);
  if (n == 0 || (!da && !db)) return;
  add_relu_backward_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(n, y, dy, da, db);
  SM_LAUNCH_CHECK("add_relu_backward_kernel");
}

}  // namespace sm::cuda
