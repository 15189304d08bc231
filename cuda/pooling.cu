// Max pooling (with argmax for backward) and global average pooling; CPU twin
// layers/pooling.cpp. Backward gathers per input cell, so no atomics are needed.
#include <cfloat>

#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

__global__ void max_pool_forward_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t k,
                                        int64_t stride, int64_t pad, const float* x, float* y, int32_t* argmax) {
  const int64_t total = planes * oh * ow;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
    const float* xp = x + plane * h * w;
    float best = -FLT_MAX;
    int64_t best_idx = -1;
    for (int64_t ky = 0; ky < k; ++ky) {
      const int64_t iy = oy * stride - pad + ky;
      if (iy < 0 || iy >= h) continue;
      for (int64_t kx = 0; kx < k; ++kx) {
        const int64_t ix = ox * stride - pad + kx;
        if (ix < 0 || ix >= w) continue;
        const float v = xp[iy * w + ix];
        if (best_idx < 0 || v > best) best = v, best_idx = iy * w + ix;  // first maximum wins ties
      }
    }
    y[i] = best;
    if (argmax) argmax[i] = int32_t(best_idx);
  }
}

__global__ void max_pool_backward_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t k,
                                         int64_t stride, int64_t pad, const int32_t* argmax, const float* dy,
                                         float* dx) {
  const int64_t total = planes * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ix = i % w, iy = (i / w) % h, plane = i / (h * w);
    // Outputs whose window covers (iy, ix): o·s − p <= i <= o·s − p + k − 1.
    const int64_t oy0 = max(int64_t(0), (iy + pad - k + stride) / stride), oy1 = min(oh - 1, (iy + pad) / stride);
    const int64_t ox0 = max(int64_t(0), (ix + pad - k + stride) / stride), ox1 = min(ow - 1, (ix + pad) / stride);
    const int32_t me = int32_t(iy * w + ix);
    float acc = 0.f;
    bool hit = false;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t o = (plane * oh + oy) * ow + ox;
        if (argmax[o] == me) acc += dy[o], hit = true;
      }
    if (hit) dx[i] += acc;
  }
}

__global__ void gap_forward_kernel(int64_t hw, const float* x, float* y) {
  __shared__ float smem[32];
  const float* xp = x + blockIdx.x * hw;
  float acc = 0.f;
  for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) acc += xp[i];
  const float t = block_sum(acc, smem);
  if (threadIdx.x == 0) y[blockIdx.x] = t / float(hw);
}

__global__ void gap_backward_kernel(int64_t total, int64_t hw, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] += dy[i / hw] / float(hw);
}

void pool_check(const char* op, const PoolShape& ps) {
  SM_CHECK(ps.n > 0 && ps.c > 0 && ps.h > 0 && ps.w > 0, op << ": empty input (" << ps.n << ", " << ps.c << ", " << ps.h
                                                               << ", " << ps.w << ")");
  SM_CHECK(ps.kernel > 0 && ps.stride > 0 && ps.pad >= 0 && ps.pad <= ps.kernel / 2,
           op << ": needs kernel > 0, stride > 0, 0 <= padding <= kernel/2 (kernel " << ps.kernel << ", stride "
              << ps.stride << ", padding " << ps.pad << ")");
  SM_CHECK(ps.out_h() > 0 && ps.out_w() > 0, op << ": kernel larger than the padded input");
  SM_CHECK(ps.h * ps.w < (int64_t(1) << 31), op << ": a plane over 2^31 cells");
}

}  // namespace

void max_pool2d_forward(const PoolShape& ps, const float* x, float* y, int32_t* argmax, Stream s) {
  pool_check("max_pool2d_forward (CUDA)", ps);
  SM_CHECK(x && y, "max_pool2d_forward (CUDA): null x or y");
  const int64_t total = ps.n * ps.c * ps.out_h() * ps.out_w();
  max_pool_forward_kernel<<<grid_for(total), kThreads, 0, stream_resolve(s)>>>(
      ps.n * ps.c, ps.h, ps.w, ps.out_h(), ps.out_w(), ps.kernel, ps.stride, ps.pad, x, y, argmax);
  SM_LAUNCH_CHECK("max_pool_forward_kernel");
}

void max_pool2d_backward(const PoolShape& ps, const int32_t* argmax, const float* dy, float* dx, Stream s) {
  pool_check("max_pool2d_backward (CUDA)", ps);
  SM_CHECK(argmax && dy, "max_pool2d_backward (CUDA): null argmax or dy (run the forward with argmax)");
  if (!dx) return;
  const int64_t total = ps.n * ps.c * ps.h * ps.w;
  max_pool_backward_kernel<<<grid_for(total), kThreads, 0, stream_resolve(s)>>>(
      ps.n * ps.c, ps.h, ps.w, ps.out_h(), ps.out_w(), ps.kernel, ps.stride, ps.pad, argmax, dy, dx);
  SM_LAUNCH_CHECK("max_pool_backward_kernel");
}

void global_avg_pool_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y, Stream s) {
  SM_CHECK(n > 0 && c > 0 && h > 0 && w > 0 && x && y, "global_avg_pool_forward (CUDA): empty shape or null pointer");
  SM_CHECK(n * c < (int64_t(1) << 31), "global_avg_pool_forward (CUDA): too many planes");
  gap_forward_kernel<<<unsigned(n * c), kThreads, 0, stream_resolve(s)>>>(h * w, x, y);
  SM_LAUNCH_CHECK("gap_forward_kernel");
}

void global_avg_pool_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, float* dx, Stream s) {
  SM_CHECK(n > 0 && c > 0 && h > 0 && w > 0 && dy, "global_avg_pool_backward (CUDA): empty shape or null dy");
  if (!dx) return;
  gap_backward_kernel<<<grid_for(n * c * h * w), kThreads, 0, stream_resolve(s)>>>(n * c * h * w, h * w, dy, dx);
  SM_LAUNCH_CHECK("gap_backward_kernel");
}

}  // namespace sm::cuda
