// Fused optimizer steps on flat float32 buffers: one kernel per step and buffer, with the same
// formulas and order of operations as the CPU (train/optim/optim_sgd.cpp, optim_adam.cpp,
// optim_rmsprop.cpp, i.e. torch.optim 1.13's _single_tensor_* paths). Step-dependent scalars
// (bias corrections) are computed on the host in double, as on the CPU.
#include <cmath>

#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

#define SM_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

__global__ void sgd_kernel(int64_t n, float* p, const float* g, float* b, float wd, float mom, float damp1, float neg_lr,
                           bool first, bool nesterov, bool decay) {
  SM_GRID_STRIDE(i, n) {
    float d = decay ? g[i] + wd * p[i] : g[i];
    if (b) {
      b[i] = first ? d : mom * b[i] + damp1 * d;
      d = nesterov ? d + mom * b[i] : b[i];
    }
    p[i] = p[i] + neg_lr * d;
  }
}

__global__ void adam_kernel(int64_t n, float* p, const float* g, float* m, float* v, float b1, float c1, float b2,
                            float c2, float eps, float bc2s, float neg_step, float l2, float shrink, bool decoupled,
                            bool decay) {
  SM_GRID_STRIDE(i, n) {
    float pi = p[i];
    if (decoupled && decay) pi = pi * shrink;
    const float gi = (!decoupled && decay) ? g[i] + l2 * pi : g[i];
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + (c2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / bc2s + eps;
    p[i] = pi + (neg_step * mi) / denom;
  }
}

__global__ void rmsprop_kernel(int64_t n, float* p, const float* g, float* s, float* b, float* a, float alpha, float c,
                               float eps, float wd, float mom, float neg_lr, bool decay) {
  SM_GRID_STRIDE(i, n) {
    const float gi = decay ? g[i] + wd * p[i] : g[i];
    const float si = alpha * s[i] + (c * gi) * gi;
    s[i] = si;
    float avg;
    if (a) {
      const float ai = alpha * a[i] + c * gi;
      a[i] = ai;
      avg = sqrtf(si + (-1.f * ai) * ai);
    } else {
      avg = sqrtf(si);
    }
    avg = avg + eps;
    if (b) {
      const float bi = mom * b[i] + (1.f * gi) / avg;
      b[i] = bi;
      p[i] = p[i] + neg_lr * bi;
    } else {
      p[i] = p[i] + (neg_lr * gi) / avg;
    }
  }
}

#undef SM_GRID_STRIDE

void optim_check(const char* op, int64_t n, const float* p, const float* g, int64_t step) {
  SM_CHECK(n >= 0, op << ": negative size " << n);
  SM_CHECK(n == 0 || (p && g), op << ": null parameters or gradients");
  SM_CHECK(step >= 1, op << ": step counts from 1, got " << step);
}

}  // namespace

void sgd_step(int64_t n, float* p, const float* g, float* buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, int64_t step, Stream s) {
  optim_check("sgd_step (CUDA)", n, p, g, step);
  SM_CHECK(momentum == 0.0 || buf, "sgd_step (CUDA): momentum > 0 needs a momentum buffer");
  if (n == 0) return;
  sgd_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(
      n, p, g, momentum != 0.0 ? buf : nullptr, float(weight_decay), float(momentum), float(1.0 - dampening), float(-lr),
      step == 1, nesterov, weight_decay != 0.0);
  SM_LAUNCH_CHECK("sgd_kernel");
}

void adam_step(int64_t n, float* p, const float* g, float* m, float* v, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, int64_t step, Stream s) {
  optim_check("adam_step (CUDA)", n, p, g, step);
  SM_CHECK(n == 0 || (m && v), "adam_step (CUDA): null moment buffers");
  if (n == 0) return;
  const double t = double(step);
  const double bias_correction1 = 1.0 - std::pow(beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
  const double step_size = lr / bias_correction1;
  adam_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(
      n, p, g, m, v, float(beta1), float(1.0 - beta1), float(beta2), float(1.0 - beta2), float(eps),
      float(bias_correction2_sqrt), float(-step_size), decoupled ? 0.f : float(weight_decay),
      float(1.0 - lr * weight_decay), decoupled, weight_decay != 0.0);
  SM_LAUNCH_CHECK("adam_kernel");
}

void rmsprop_step(int64_t n, float* p, const float* g, float* square_avg, float* buf, float* grad_avg, double lr,
                  double alpha, double eps, double weight_decay, double momentum, bool centered, Stream s) {
  optim_check("rmsprop_step (CUDA)", n, p, g, 1);
  SM_CHECK(n == 0 || square_avg, "rmsprop_step (CUDA): null square_avg");
  SM_CHECK(momentum <= 0.0 || buf, "rmsprop_step (CUDA): momentum > 0 needs a momentum buffer");
  SM_CHECK(!centered || grad_avg, "rmsprop_step (CUDA): centered needs grad_avg");
  if (n == 0) return;
  rmsprop_kernel<<<grid_for(n), kThreads, 0, stream_resolve(s)>>>(
      n, p, g, square_avg, momentum > 0.0 ? buf : nullptr, centered ? grad_avg : nullptr, float(alpha),
      float(1.0 - alpha), float(eps), float(weight_decay), float(momentum), float(-lr), weight_decay != 0.0);
  SM_LAUNCH_CHECK("rmsprop_kernel");
}

}  // namespace sm::cuda
