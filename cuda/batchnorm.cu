// BatchNorm2d on the GPU with our own kernels (CPU twin: layers/batchnorm2d.cpp; same formulas).
// Per-channel sums run in two fixed-order stages (a fixed grid of partial sums per channel,
// then one block per channel), in double: deterministic without atomics, in every mode.
#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

enum class Reduce { Sum, SquaredDeviation, Backward };

// partial[(c * parts + part) * 2 + {0,1}]: the block's sums over its slice of channel c.
//   Sum:              Σ x
//   SquaredDeviation: Σ (x − mean_c)²
//   Backward:         Σ dy, Σ dy (x − mean_c)
template <Reduce R>
__global__ void channel_partial_kernel(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                                       const float* mean, int parts, double* partial) {
  __shared__ double smem[32];
  const int64_t ch = blockIdx.y, part = blockIdx.x, m = n * hw;
  const int64_t chunk = (m + parts - 1) / parts;
  const int64_t begin = part * chunk, end = min(m, begin + chunk);
  const float mu = (R == Reduce::Sum) ? 0.f : mean[ch];
  double a = 0, b = 0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const int64_t idx = ((j / hw) * c + ch) * hw + j % hw;
    if (R == Reduce::Sum) {
      a += double(x[idx]);
    } else if (R == Reduce::SquaredDeviation) {
      const double d = double(x[idx]) - double(mu);
      a += d * d;
    } else {
      const double g = double(dy[idx]);
      a += g;
      b += g * (double(x[idx]) - double(mu));
    }
  }
  a = block_sum(a, smem);
  if (R == Reduce::Backward) b = block_sum(b, smem);
  if (threadIdx.x == 0) {
    partial[(ch * parts + part) * 2] = a;
    partial[(ch * parts + part) * 2 + 1] = b;
  }
}

// One block per channel: totals of the partials, in part order.
__device__ void channel_totals(int parts, const double* partial, double& a, double& b) {
  __shared__ double smem[32];
  const int64_t ch = blockIdx.x;
  double sa = 0, sb = 0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) {
    sa += partial[(ch * parts + i) * 2];
    sb += partial[(ch * parts + i) * 2 + 1];
  }
  a = block_sum(sa, smem);
  b = block_sum(sb, smem);
}

__global__ void finalize_mean_kernel(int parts, const double* partial, double m, float* mean) {
  double a, b;
  channel_totals(parts, partial, a, b);
  if (threadIdx.x == 0) mean[blockIdx.x] = float(a / m);
}

__global__ void finalize_var_kernel(int parts, const double* partial, double m, double eps, double momentum,
                                    const float* mean, float* invstd, float* running_mean, float* running_var) {
  double a, b;
  channel_totals(parts, partial, a, b);
  if (threadIdx.x != 0) return;
  const int64_t ch = blockIdx.x;
  const double var = a / m;  // biased, for normalisation
  invstd[ch] = float(1.0 / sqrt(var + eps));
  if (running_mean) running_mean[ch] = float((1.0 - momentum) * double(running_mean[ch]) + momentum * double(mean[ch]));
  if (running_var)
    running_var[ch] = float((1.0 - momentum) * double(running_var[ch]) + momentum * var * m / (m - 1.0));
}

// Backward coefficients per channel: dx += k g − a (x − μ) − b0 (training) or k g (eval).
__global__ void finalize_backward_kernel(int parts, const double* partial, double m, bool training,
                                         const float* weight, const float* invstd, float* dweight, float* dbias,
                                         float* coef) {
  double sg, sgd;
  channel_totals(parts, partial, sg, sgd);
  if (threadIdx.x != 0) return;
  const int64_t ch = blockIdx.x;
  const double s = double(invstd[ch]), gamma = weight ? double(weight[ch]) : 1.0;
  const double sgx = sgd * s;  // Σ g x̂
  if (dweight) dweight[ch] += float(sgx);
  if (dbias) dbias[ch] += float(sg);
  const double k = gamma * s;
  coef[3 * ch] = float(k);
  coef[3 * ch + 1] = training ? float(k * sgx / m * s) : 0.f;
  coef[3 * ch + 2] = training ? float(k * sg / m) : 0.f;
}

__global__ void eval_invstd_kernel(int64_t c, const float* running_var, double eps, float* invstd) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < c) invstd[i] = float(1.0 / sqrt(double(running_var[i]) + eps));
}

__global__ void apply_kernel(int64_t total, int64_t c, int64_t hw, const float* x, const float* mean,
                             const float* invstd, const float* weight, const float* bias, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = (i / hw) % c;
    const float sc = invstd[ch] * (weight ? weight[ch] : 1.f);
    y[i] = (x[i] - mean[ch]) * sc + (bias ? bias[ch] : 0.f);
  }
}

__global__ void dx_kernel(int64_t total, int64_t c, int64_t hw, const float* x, const float* dy, const float* mean,
                          const float* coef, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = (i / hw) % c;
    dx[i] += coef[3 * ch] * dy[i] - coef[3 * ch + 1] * (x[i] - mean[ch]) - coef[3 * ch + 2];
  }
}

// Partial sums per channel: enough blocks to fill the GPU, at most 64, fixed by the shape.
int parts_for(int64_t m) { return int(std::max<int64_t>(1, std::min<int64_t>(64, (m + 2047) / 2048))); }

template <Reduce R>
void channel_partials(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy, const float* mean,
                      int parts, double* partial, cudaStream_t st) {
  SM_CHECK(c < 65536, "BatchNorm (CUDA): at most 65535 channels, got " << c);
  const dim3 grid{unsigned(parts), unsigned(c), 1u};
  channel_partial_kernel<R><<<grid, kThreads, 0, st>>>(n, c, hw, x, dy, mean, parts, partial);
  SM_LAUNCH_CHECK("channel_partial_kernel");
}

void bn_check(const char* op, int64_t n, int64_t c, int64_t h, int64_t w, const float* x) {
  SM_CHECK(n > 0 && c > 0 && h > 0 && w > 0, op << ": empty shape (" << n << ", " << c << ", " << h << ", " << w << ")");
  SM_CHECK(x, op << ": null x");
}

__global__ void channel_sum_finalize_kernel(int parts, const double* partial, float* out) {
  double a, b;
  channel_totals(parts, partial, a, b);
  if (threadIdx.x == 0) out[blockIdx.x] += float(a);
}

}  // namespace

void channel_sum_add(int64_t n, int64_t c, int64_t hw, const float* x, float* out, Stream s) {
  SM_CHECK(n > 0 && c > 0 && hw > 0 && x && out, "channel_sum_add (CUDA): empty shape or null pointer");
  cudaStream_t st = stream_resolve(s);
  const int parts = parts_for(n * hw);
  DeviceBuffer partial(size_t(c) * parts * 2 * sizeof(double));
  channel_partials<Reduce::Sum>(n, c, hw, x, nullptr, nullptr, parts, partial.as<double>(), st);
  channel_sum_finalize_kernel<<<unsigned(c), kThreads, 0, st>>>(parts, partial.as<double>(), out);
  SM_LAUNCH_CHECK("channel_sum_finalize_kernel");
}

void batchnorm_forward_train(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const float* weight,
                             const float* bias, float* running_mean, float* running_var, double momentum, double eps,
                             float* y, float* save_mean, float* save_invstd, Stream s) {
  bn_check("batchnorm_forward_train", n, c, h, w, x);
  const int64_t hw = h * w, m = n * hw;
  SM_CHECK(m > 1, "batchnorm_forward_train (CUDA): training needs more than 1 value per channel, x is ("
                      << n << ", " << c << ", " << h << ", " << w << ")");
  SM_CHECK(y && save_mean && save_invstd, "batchnorm_forward_train (CUDA): null y or saved statistics");
  cudaStream_t st = stream_resolve(s);
  const int parts = parts_for(m);
  DeviceBuffer partial(size_t(c) * parts * 2 * sizeof(double));
  double* pp = partial.as<double>();
  channel_partials<Reduce::Sum>(n, c, hw, x, nullptr, nullptr, parts, pp, st);
  finalize_mean_kernel<<<unsigned(c), kThreads, 0, st>>>(parts, pp, double(m), save_mean);
  SM_LAUNCH_CHECK("finalize_mean_kernel");
  channel_partials<Reduce::SquaredDeviation>(n, c, hw, x, nullptr, save_mean, parts, pp, st);
  finalize_var_kernel<<<unsigned(c), kThreads, 0, st>>>(parts, pp, double(m), eps, momentum, save_mean, save_invstd,
                                                        running_mean, running_var);
  SM_LAUNCH_CHECK("finalize_var_kernel");
  apply_kernel<<<grid_for(n * c * hw), kThreads, 0, st>>>(n * c * hw, c, hw, x, save_mean, save_invstd, weight, bias, y);
  SM_LAUNCH_CHECK("apply_kernel");
}

void batchnorm_forward_eval(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const float* weight,
                            const float* bias, const float* running_mean, const float* running_var, double eps,
                            float* y, float* save_mean, float* save_invstd, Stream s) {
  bn_check("batchnorm_forward_eval", n, c, h, w, x);
  SM_CHECK(running_mean && running_var && y, "batchnorm_forward_eval (CUDA): eval mode needs the running statistics");
  cudaStream_t st = stream_resolve(s);
  DeviceBuffer scratch(save_invstd ? 0 : size_t(c) * sizeof(float));
  float* invstd = save_invstd ? save_invstd : scratch.as<float>();
  eval_invstd_kernel<<<grid_for(c), kThreads, 0, st>>>(c, running_var, eps, invstd);
  SM_LAUNCH_CHECK("eval_invstd_kernel");
  if (save_mean)  // a copy: a later training step may update the running mean before this backward
    SM_CUDA_CHECK(cudaMemcpyAsync(save_mean, running_mean, size_t(c) * sizeof(float), cudaMemcpyDeviceToDevice, st));
  apply_kernel<<<grid_for(n * c * h * w), kThreads, 0, st>>>(n * c * h * w, c, h * w, x, running_mean, invstd, weight,
                                                             bias, y);
  SM_LAUNCH_CHECK("apply_kernel");
}

void batchnorm_backward(bool training, int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const float* weight,
                        const float* save_mean, const float* save_invstd, const float* dy, float* dx, float* dweight,
                        float* dbias, Stream s) {
  bn_check("batchnorm_backward", n, c, h, w, x);
  SM_CHECK(save_mean && save_invstd && dy, "batchnorm_backward (CUDA): null saved statistics or dy");
  cudaStream_t st = stream_resolve(s);
  const int64_t hw = h * w, m = n * hw;
  const int parts = parts_for(m);
  DeviceBuffer partial(size_t(c) * parts * 2 * sizeof(double)), coef(size_t(c) * 3 * sizeof(float));
  channel_partials<Reduce::Backward>(n, c, hw, x, dy, save_mean, parts, partial.as<double>(), st);
  finalize_backward_kernel<<<unsigned(c), kThreads, 0, st>>>(parts, partial.as<double>(), double(m), training, weight,
                                                             save_invstd, dweight, dbias, coef.as<float>());
  SM_LAUNCH_CHECK("finalize_backward_kernel");
  if (!dx) return;
  dx_kernel<<<grid_for(n * c * hw), kThreads, 0, st>>>(n * c * hw, c, hw, x, dy, save_mean, coef.as<float>(), dx);
  SM_LAUNCH_CHECK("dx_kernel");
}

}  // namespace sm::cuda
