// DSNT on the GPU, always float32 (method.md §4; the contracts are tensor/kernels/dsnt.h, the CPU
// twins tensor/kernels/cpu/dsnt.cpp): flat softmax, DSNT and the Gaussian targets. One block per
// heatmap channel; per-cell terms in float32, sums in double in a fixed order (deterministic, no
// atomics).
#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

__device__ inline float grid_x(int64_t j, int64_t w) { return float(2 * j + 1) / float(w) - 1.f; }


__global__ void softmax_forward_kernel(int64_t m, const float* z, float* p) {
  __shared__ float fsmem[32];
  __shared__ double dsmem[32];
  const float* zc = z + blockIdx.x * m;
  float* pc = p + blockIdx.x * m;
  float mx = -3.402823466e38f;
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) mx = max(mx, zc[k]);
  mx = block_max(mx, fsmem);
  double s = 0;
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
    const float e = expf(zc[k] - mx);
    pc[k] = e;
    s += double(e);
  }
  const float inv = float(1.0 / block_sum(s, dsmem));
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) pc[k] *= inv;
}

__global__ void softmax_backward_kernel(int64_t m, const float* p, const float* g, float* dz) {
  __shared__ double smem[32];
  const int64_t off = blockIdx.x * m;
  double d = 0;
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) d += double(p[off + k]) * double(g[off + k]);
  const float dot = float(block_sum(d, smem));
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) dz[off + k] += p[off + k] * (g[off + k] - dot);
}

__global__ void dsnt_forward_kernel(int64_t h, int64_t w, const float* p, float* mu) {
  __shared__ double smem[32];
  const float* pc = p + blockIdx.x * h * w;
  double sx = 0, sy = 0;
  for (int64_t k = threadIdx.x; k < h * w; k += blockDim.x) {
    const float v = pc[k];
    sx += double(v * grid_x(k % w, w));
    sy += double(v * grid_x(k / w, h));
  }
  sx = block_sum(sx, smem);
  sy = block_sum(sy, smem);
  if (threadIdx.x == 0) mu[2 * blockIdx.x] = float(sx), mu[2 * blockIdx.x + 1] = float(sy);
}

__global__ void dsnt_backward_kernel(int64_t total, int64_t h, int64_t w, const float* dmu, float* dp) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = i / (h * w), k = i % (h * w);
    dp[i] += dmu[2 * ch] * grid_x(k % w, w) + dmu[2 * ch + 1] * grid_x(k / w, h);
  }
}

__global__ void gaussian_kernel(int64_t h, int64_t w, const float* centres, double sigma, float* q) {
  __shared__ double smem[32];
  const int64_t ch = blockIdx.x, m = h * w;
  float* qc = q + ch * m;
  // dsnt_denormalise: pixel = ((c + 1) size − 1) / 2.
  const double px = ((double(centres[2 * ch]) + 1.0) * double(w) - 1.0) / 2.0;
  const double py = ((double(centres[2 * ch + 1]) + 1.0) * double(h) - 1.0) / 2.0;
  const double inv2s2 = 1.0 / (2.0 * sigma * sigma);
  double s = 0;
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
    const double dx = double(k % w) - px, dy = double(k / w) - py;
    const double v = exp(-(dx * dx + dy * dy) * inv2s2);
    qc[k] = float(v);
    s += v;
  }
  s = block_sum(s, smem);
  const bool degenerate = !(s > 0);  // every cell underflowed: uniform, as on the CPU
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x)
    qc[k] = degenerate ? float(1.0 / double(m)) : float(double(qc[k]) / s);
}

void maps_check(const char* op, int64_t channels, int64_t h, int64_t w) {
  SM_CHECK(channels > 0 && h > 0 && w > 0, op << ": empty heatmaps, " << channels << " channels of " << h << "x" << w);
  SM_CHECK(channels < (int64_t(1) << 31), op << ": too many channels (" << channels << ")");
}

}  // namespace

void flat_softmax_forward(int64_t channels, int64_t h, int64_t w, const float* z, float* p, Stream s) {
  maps_check("flat_softmax_forward (CUDA)", channels, h, w);
  SM_CHECK(z && p, "flat_softmax_forward (CUDA): null z or p");
  softmax_forward_kernel<<<unsigned(channels), kThreads, 0, stream_resolve(s)>>>(h * w, z, p);
  SM_LAUNCH_CHECK("softmax_forward_kernel");
}

void flat_softmax_backward(int64_t channels, int64_t h, int64_t w, const float* p, const float* dp, float* dz, Stream s) {
  maps_check("flat_softmax_backward (CUDA)", channels, h, w);
  SM_CHECK(p && dp, "flat_softmax_backward (CUDA): null p or dp");
  if (!dz) return;
  softmax_backward_kernel<<<unsigned(channels), kThreads, 0, stream_resolve(s)>>>(h * w, p, dp, dz);
  SM_LAUNCH_CHECK("softmax_backward_kernel");
}

void dsnt_forward(int64_t channels, int64_t h, int64_t w, const float* p, float* mu, Stream s) {
  maps_check("dsnt_forward (CUDA)", channels, h, w);
  SM_CHECK(p && mu, "dsnt_forward (CUDA): null p or mu");
  dsnt_forward_kernel<<<unsigned(channels), kThreads, 0, stream_resolve(s)>>>(h, w, p, mu);
  SM_LAUNCH_CHECK("dsnt_forward_kernel");
}

void dsnt_backward(int64_t channels, int64_t h, int64_t w, const float* dmu, float* dp, Stream s) {
  maps_check("dsnt_backward (CUDA)", channels, h, w);
  SM_CHECK(dmu, "dsnt_backward (CUDA): null dmu");
  if (!dp) return;
  const int64_t total = channels * h * w;
  dsnt_backward_kernel<<<grid_for(total), kThreads, 0, stream_resolve(s)>>>(total, h, w, dmu, dp);
  SM_LAUNCH_CHECK("dsnt_backward_kernel");
}

void gaussian_heatmaps(int64_t channels, int64_t h, int64_t w, const float* centres, double sigma, float* q, Stream s) {
  maps_check("gaussian_heatmaps (CUDA)", channels, h, w);
  SM_CHECK(sigma > 0, "gaussian_heatmaps (CUDA): sigma must be positive, got " << sigma);
  SM_CHECK(centres && q, "gaussian_heatmaps (CUDA): null centres or q");
  gaussian_kernel<<<unsigned(channels), kThreads, 0, stream_resolve(s)>>>(h, w, centres, sigma, q);
  SM_LAUNCH_CHECK("gaussian_kernel");
}

}  // namespace sm::cuda
