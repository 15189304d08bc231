// The DSNT losses on the GPU, always float32 (method.md §4; the contracts are
// tensor/kernels/losses.h, the CPU twins tensor/kernels/cpu/losses.cpp): Euclidean, JS, KL and
// variance. Per-channel values with one block per channel (per-cell terms in float32, sums in
// double in a fixed order: deterministic, no atomics), then one block forms Σ_c w_c f_c with
// w_c = mask_c / Σ mask.
#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

constexpr float kEps = 1e-24f;  // kernels::kDivergenceEps (tensor/kernels/losses.h)

// w_c = mask_c / Σ mask (all 1/channels without a mask; 0 when nothing is visible). One block.
__global__ void weights_kernel(int64_t channels, const float* mask, float* weights) {
  __shared__ double smem[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < channels; i += blockDim.x) s += mask ? double(mask[i]) : 1.0;
  s = block_sum(s, smem);
  for (int64_t i = threadIdx.x; i < channels; i += blockDim.x)
    weights[i] = s > 0 ? float((mask ? double(mask[i]) : 1.0) / s) : 0.f;
}

// loss = Σ_c w_c f_c in channel order (one block).
__global__ void weighted_total_kernel(int64_t channels, const double* f, const float* weights, float* loss) {
  __shared__ double smem[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < channels; i += blockDim.x)
    if (weights[i] != 0.f) s += double(weights[i]) * f[i];
  s = block_sum(s, smem);
  if (threadIdx.x == 0) *loss = float(s);
}

__global__ void euclidean_forward_kernel(int64_t channels, const float* mu, const float* t, double* f) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= channels) return;
  const double dx = double(mu[2 * i]) - double(t[2 * i]), dy = double(mu[2 * i + 1]) - double(t[2 * i + 1]);
  f[i] = sqrt(dx * dx + dy * dy);
}

__global__ void euclidean_backward_kernel(int64_t channels, const float* mu, const float* t, const float* weights,
                                          const float* dloss, float* dmu) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= channels || weights[i] == 0.f) return;
  const double dx = double(mu[2 * i]) - double(t[2 * i]), dy = double(mu[2 * i + 1]) - double(t[2 * i + 1]);
  const double d = sqrt(dx * dx + dy * dy);
  if (d == 0) return;  // the gradient at zero distance is defined as 0
  const double s = double(*dloss) * double(weights[i]) / d;
  dmu[2 * i] += float(s * dx);
  dmu[2 * i + 1] += float(s * dy);
}

enum class Div { JS, KL };

// f_c = JS(P‖Q) = ½ KL(P‖M) + ½ KL(Q‖M), M = (P+Q)/2; or KL(P‖Q) = Σ P (log(P+ε) − log(Q+ε)).
template <Div D> __global__ void divergence_forward_kernel(int64_t m, const float* p, const float* q, double* f) {
  __shared__ double smem[32];
  const float* pc = p + blockIdx.x * m;
  const float* qc = q + blockIdx.x * m;
  double s = 0;
  for (int64_t k = threadIdx.x; k < m; k += blockDim.x) {
    const float a = pc[k], b = qc[k];
    if (D == Div::JS) {
      const float mid = 0.5f * (a + b), lm = logf(mid + kEps);
      s += 0.5 * double(a * (logf(a + kEps) - lm)) + 0.5 * double(b * (logf(b + kEps) - lm));
    } else {
      s += double(a * (logf(a + kEps) - logf(b + kEps)));
    }
  }
  s = block_sum(s, smem);
  if (threadIdx.x == 0) f[blockIdx.x] = s;
}

// JS: ∂/∂P = ½ [log((P+ε)/(M+ε)) + P/(P+ε) − M/(M+ε)];  KL: log(P+ε) − log(Q+ε) + P/(P+ε).
template <Div D>
__global__ void divergence_backward_kernel(int64_t total, int64_t m, const float* p, const float* q,
                                           const float* weights, const float* dloss, float* dp) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const float wc = weights[i / m];
    if (wc == 0.f) continue;
    const float a = p[i], b = q[i];
    float d;
    if (D == Div::JS) {
      const float mid = 0.5f * (a + b);
      d = 0.5f * (logf((a + kEps) / (mid + kEps)) + a / (a + kEps) - mid / (mid + kEps));
    } else {
      d = logf(a + kEps) - logf(b + kEps) + a / (a + kEps);
    }
    dp[i] += (*dloss) * wc * d;
  }
}

// Moments of P in pixels: μx = Σ P j, μy = Σ P i, Vx = Σ P j² − μx², Vy likewise.
__device__ void moments(int64_t h, int64_t w, const float* pc, double& mx, double& my, double& vx, double& vy) {
  __shared__ double smem[32];
  double sx = 0, sy = 0, sxx = 0, syy = 0;
  for (int64_t k = threadIdx.x; k < h * w; k += blockDim.x) {
    const double v = double(pc[k]), j = double(k % w), i = double(k / w);
    sx += v * j, sy += v * i, sxx += v * j * j, syy += v * i * i;
  }
  sx = block_sum(sx, smem), sy = block_sum(sy, smem), sxx = block_sum(sxx, smem), syy = block_sum(syy, smem);
  mx = sx, my = sy, vx = sxx - sx * sx, vy = syy - sy * sy;
}

__global__ void variance_forward_kernel(int64_t h, int64_t w, const float* p, double s2, double* f) {
  double mx, my, vx, vy;
  moments(h, w, p + blockIdx.x * h * w, mx, my, vx, vy);
  if (threadIdx.x == 0) f[blockIdx.x] = (vx - s2) * (vx - s2) + (vy - s2) * (vy - s2);
}

// ∂R/∂P_ij = 2(Vx − σ²)(j² − 2μx j) + 2(Vy − σ²)(i² − 2μy i).
__global__ void variance_backward_kernel(int64_t h, int64_t w, const float* p, double s2, const float* weights,
                                         const float* dloss, float* dp) {
  const float wc = weights[blockIdx.x];
  if (wc == 0.f) return;  // uniform per block: no thread reaches a barrier the others skip
  double mx, my, vx, vy;
  moments(h, w, p + blockIdx.x * h * w, mx, my, vx, vy);
  const float ax = float(2 * (vx - s2)), ay = float(2 * (vy - s2)), fmx = float(mx), fmy = float(my);
  const float scale = (*dloss) * wc;
  float* dc = dp + blockIdx.x * h * w;
  for (int64_t k = threadIdx.x; k < h * w; k += blockDim.x) {
    const float j = float(k % w), i = float(k / w);
    dc[k] += scale * (ax * (j * j - 2.f * fmx * j) + ay * (i * i - 2.f * fmy * i));
  }
}

void maps_check(const char* op, int64_t channels, int64_t h, int64_t w) {
  SM_CHECK(channels > 0 && h > 0 && w > 0, op << ": empty heatmaps, " << channels << " channels of " << h << "x" << w);
  SM_CHECK(channels < (int64_t(1) << 31), op << ": too many channels (" << channels << ")");
}

void weights_compute(int64_t channels, const float* mask, float* weights, cudaStream_t st) {
  weights_kernel<<<1, 1024, 0, st>>>(channels, mask, weights);
  SM_LAUNCH_CHECK("weights_kernel");
}

void weighted_total(int64_t channels, const double* f, const float* weights, float* loss, cudaStream_t st) {
  weighted_total_kernel<<<1, 1024, 0, st>>>(channels, f, weights, loss);
  SM_LAUNCH_CHECK("weighted_total_kernel");
}

}  // namespace

void euclidean_loss_forward(int64_t channels, const float* mu, const float* target, const float* mask, float* loss,
                            Stream s) {
  maps_check("euclidean_loss_forward (CUDA)", channels, 1, 1);
  SM_CHECK(mu && target && loss, "euclidean_loss_forward (CUDA): null mu, target or loss");
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer f(size_t(channels) * sizeof(double)), wts(size_t(channels) * sizeof(float));
  weights_compute(channels, mask, wts.as<float>(), st);
  euclidean_forward_kernel<<<grid_for(channels), kThreads, 0, st>>>(channels, mu, target, f.as<double>());
  SM_LAUNCH_CHECK("euclidean_forward_kernel");
  weighted_total(channels, f.as<double>(), wts.as<float>(), loss, st);
}

void euclidean_loss_backward(int64_t channels, const float* mu, const float* target, const float* mask,
                             const float* dloss, float* dmu, Stream s) {
  maps_check("euclidean_loss_backward (CUDA)", channels, 1, 1);
  SM_CHECK(mu && target && dloss, "euclidean_loss_backward (CUDA): null mu, target or dloss");
  if (!dmu) return;
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer wts(size_t(channels) * sizeof(float));
  weights_compute(channels, mask, wts.as<float>(), st);
  euclidean_backward_kernel<<<grid_for(channels), kThreads, 0, st>>>(channels, mu, target, wts.as<float>(), dloss, dmu);
  SM_LAUNCH_CHECK("euclidean_backward_kernel");
}

namespace {
template <Div D>
void divergence_forward(const char* op, int64_t channels, int64_t h, int64_t w, const float* p, const float* q,
                        const float* mask, float* loss, Stream s) {
  maps_check(op, channels, h, w);
  SM_CHECK(p && q && loss, op << ": null p, q or loss");
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer f(size_t(channels) * sizeof(double)), wts(size_t(channels) * sizeof(float));
  weights_compute(channels, mask, wts.as<float>(), st);
  divergence_forward_kernel<D><<<unsigned(channels), kThreads, 0, st>>>(h * w, p, q, f.as<double>());
  SM_LAUNCH_CHECK("divergence_forward_kernel");
  weighted_total(channels, f.as<double>(), wts.as<float>(), loss, st);
}

template <Div D>
void divergence_backward(const char* op, int64_t channels, int64_t h, int64_t w, const float* p, const float* q,
                         const float* mask, const float* dloss, float* dp, Stream s) {
  maps_check(op, channels, h, w);
  SM_CHECK(p && q && dloss, op << ": null p, q or dloss");
  if (!dp) return;
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer wts(size_t(channels) * sizeof(float));
  weights_compute(channels, mask, wts.as<float>(), st);
  const int64_t total = channels * h * w;
  divergence_backward_kernel<D><<<grid_for(total), kThreads, 0, st>>>(total, h * w, p, q, wts.as<float>(), dloss, dp);
  SM_LAUNCH_CHECK("divergence_backward_kernel");
}
}  // namespace

void js_forward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask, float* loss,
                Stream s) {
  divergence_forward<Div::JS>("js_forward (CUDA)", channels, h, w, p, q, mask, loss, s);
}
void js_backward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask,
                 const float* dloss, float* dp, Stream s) {
  divergence_backward<Div::JS>("js_backward (CUDA)", channels, h, w, p, q, mask, dloss, dp, s);
}
void kl_forward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask, float* loss,
                Stream s) {
  divergence_forward<Div::KL>("kl_forward (CUDA)", channels, h, w, p, q, mask, loss, s);
}
void kl_backward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask,
                 const float* dloss, float* dp, Stream s) {
  divergence_backward<Div::KL>("kl_backward (CUDA)", channels, h, w, p, q, mask, dloss, dp, s);
}

void variance_forward(int64_t channels, int64_t h, int64_t w, const float* p, double sigma, const float* mask,
                      float* loss, Stream s) {
  maps_check("variance_forward (CUDA)", channels, h, w);
  SM_CHECK(p && loss, "variance_forward (CUDA): null p or loss");
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer f(size_t(channels) * sizeof(double)), wts(size_t(channels) * sizeof(float));
  weights_compute(channels, mask, wts.as<float>(), st);
  variance_forward_kernel<<<unsigned(channels), kThreads, 0, st>>>(h, w, p, sigma * sigma, f.as<double>());
  SM_LAUNCH_CHECK("variance_forward_kernel");
  weighted_total(channels, f.as<double>(), wts.as<float>(), loss, st);
}

void variance_backward(int64_t channels, int64_t h, int64_t w, const float* p, double sigma, const float* mask,
                       const float* dloss, float* dp, Stream s) {
  maps_check("variance_backward (CUDA)", channels, h, w);
  SM_CHECK(p && dloss, "variance_backward (CUDA): null p or dloss");
  if (!dp) return;
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer wts(size_t(channels) * sizeof(float));
  weights_compute(channels, mask, wts.as<float>(), st);
  variance_backward_kernel<<<unsigned(channels), kThreads, 0, st>>>(h, w, p, sigma * sigma, wts.as<float>(), dloss, dp);
  SM_LAUNCH_CHECK("variance_backward_kernel");
}

}  // namespace sm::cuda
