// Dispatch of the DSNT kernels (contract: dsnt.h).
#include "tensor/kernels/dsnt.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
// Heatmaps (N, C, H, W), not empty: returns N·C.
int64_t channels_of(KernelId op, const Tensor& t) {
  SM_CHECK(t.dim() == 4 && t.size(2) > 0 && t.size(3) > 0, op << " expects (N, C, H, W) heatmaps, got " << t.str());
  return t.size(0) * t.size(1);
}
}  // namespace

void flat_softmax_forward(const Tensor& z, Tensor& p) {
  constexpr KernelId op = KernelId::flat_softmax_forward;
  const int64_t ch = channels_of(op, z);
  check_numel(op, z, p);
  if (kernel_device(op, {&z, &p}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::flat_softmax_forward(ch, z.size(2), z.size(3), f32_ptr(z), f32_ptr(p));
    return;
  }
  cpu::flat_softmax_forward(z, p);
}

void flat_softmax_backward(const Tensor& p, const Tensor& dp, Tensor& dz) {
  constexpr KernelId op = KernelId::flat_softmax_backward;
  const int64_t ch = channels_of(op, p);
  check_numel(op, p, dp), check_numel(op, p, dz);
  if (kernel_device(op, {&p, &dp, &dz}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::flat_softmax_backward(ch, p.size(2), p.size(3), f32_ptr(p), f32_ptr(dp), f32_ptr(dz));
    return;
  }
  cpu::flat_softmax_backward(p, dp, dz);
}

void dsnt_forward(const Tensor& p, Tensor& mu) {
  constexpr KernelId op = KernelId::dsnt_forward;
  const int64_t ch = channels_of(op, p);
  check_numel(op, mu, 2 * ch, "mu");
  if (kernel_device(op, {&p, &mu}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::dsnt_forward(ch, p.size(2), p.size(3), f32_ptr(p), f32_ptr(mu));
    return;
  }
  cpu::dsnt_forward(p, mu);
}

void dsnt_backward(const Tensor& dmu, Tensor& dp) {
  constexpr KernelId op = KernelId::dsnt_backward;
  const int64_t ch = channels_of(op, dp);
  check_numel(op, dmu, 2 * ch, "dmu");
  if (kernel_device(op, {&dmu, &dp}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::dsnt_backward(ch, dp.size(2), dp.size(3), f32_ptr(dmu), f32_ptr(dp));
    return;
  }
  cpu::dsnt_backward(dmu, dp);
}

void gaussian_heatmaps(const Tensor& centres, double sigma, Tensor& q) {
  constexpr KernelId op = KernelId::gaussian_heatmaps;
  const int64_t ch = channels_of(op, q);
  SM_CHECK(sigma > 0, op << ": sigma must be positive, got " << sigma);
  check_numel(op, centres, 2 * ch, "centres");
  if (kernel_device(op, {&centres, &q}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::gaussian_heatmaps(ch, q.size(2), q.size(3), f32_ptr(centres), sigma, f32_ptr(q));
    return;
  }
  cpu::gaussian_heatmaps(centres, sigma, q);
}

}  // namespace sm::kernels
