// Dispatch of the loss kernels (contract: losses.h).
#include "tensor/kernels/losses.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
// Checks the shared arguments of a loss: input (N, C, ...), optional mask (N, C), a () loss or
// dloss, and an optional second input of the input's size. Returns N·C.
int64_t check_loss(KernelId op, const Tensor& in, const Tensor& other, const Tensor& mask, const Tensor& scalar) {
  SM_CHECK(in.dim() >= 3, op << ": input " << in.str() << " must be (N, C, ...)");
  const int64_t channels = in.size(0) * in.size(1);
  if (other.defined()) check_numel(op, in, other);
  if (mask.defined()) check_numel(op, mask, channels, "mask");
  check_numel(op, scalar, 1, "loss");
  return channels;
}
}  // namespace

void euclidean_loss_forward(const Tensor& mu, const Tensor& target, const Tensor& mask, Tensor& loss) {
  constexpr KernelId op = KernelId::euclidean_loss_forward;
  const int64_t ch = check_loss(op, mu, target, mask, loss);
  if (kernel_device(op, {&mu, &target, &mask, &loss}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::euclidean_loss_forward(ch, f32_ptr(mu), f32_ptr(target), f32_ptr(mask), f32_ptr(loss));
    return;
  }
  cpu::euclidean_loss_forward(mu, target, mask, loss);
}

void euclidean_loss_backward(const Tensor& mu, const Tensor& target, const Tensor& mask, const Tensor& dloss,
                             Tensor& dmu) {
  constexpr KernelId op = KernelId::euclidean_loss_backward;
  const int64_t ch = check_loss(op, mu, target, mask, dloss);
  check_numel(op, mu, dmu);
  if (kernel_device(op, {&mu, &target, &mask, &dloss, &dmu}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::euclidean_loss_backward(ch, f32_ptr(mu), f32_ptr(target), f32_ptr(mask), f32_ptr(dloss), f32_ptr(dmu));
    return;
  }
  cpu::euclidean_loss_backward(mu, target, mask, dloss, dmu);
}

void js_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss) {
  constexpr KernelId op = KernelId::js_forward;
  const int64_t ch = check_loss(op, p, q, mask, loss);
  if (kernel_device(op, {&p, &q, &mask, &loss}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::js_forward(ch, p.size(2), p.size(3), f32_ptr(p), f32_ptr(q), f32_ptr(mask), f32_ptr(loss));
    return;
  }
  cpu::js_forward(p, q, mask, loss);
}

void js_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp) {
  constexpr KernelId op = KernelId::js_backward;
  const int64_t ch = check_loss(op, p, q, mask, dloss);
  check_numel(op, p, dp);
  if (kernel_device(op, {&p, &q, &mask, &dloss, &dp}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::js_backward(ch, p.size(2), p.size(3), f32_ptr(p), f32_ptr(q), f32_ptr(mask), f32_ptr(dloss), f32_ptr(dp));
    return;
  }
  cpu::js_backward(p, q, mask, dloss, dp);
}

void kl_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss) {
  constexpr KernelId op = KernelId::kl_forward;
  const int64_t ch = check_loss(op, p, q, mask, loss);
  if (kernel_device(op, {&p, &q, &mask, &loss}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::kl_forward(ch, p.size(2), p.size(3), f32_ptr(p), f32_ptr(q), f32_ptr(mask), f32_ptr(loss));
    return;
  }
  cpu::kl_forward(p, q, mask, loss);
}

void kl_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp) {
  constexpr KernelId op = KernelId::kl_backward;
  const int64_t ch = check_loss(op, p, q, mask, dloss);
  check_numel(op, p, dp);
  if (kernel_device(op, {&p, &q, &mask, &dloss, &dp}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::kl_backward(ch, p.size(2), p.size(3), f32_ptr(p), f32_ptr(q), f32_ptr(mask), f32_ptr(dloss), f32_ptr(dp));
    return;
  }
  cpu::kl_backward(p, q, mask, dloss, dp);
}

void variance_forward(const Tensor& p, double sigma, const Tensor& mask, Tensor& loss) {
  constexpr KernelId op = KernelId::variance_forward;
  const int64_t ch = check_loss(op, p, Tensor(), mask, loss);
  if (kernel_device(op, {&p, &mask, &loss}) == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::variance_forward(ch, p.size(2), p.size(3), f32_ptr(p), sigma, f32_ptr(mask), f32_ptr(loss));
    return;
  }
  cpu::variance_forward(p, sigma, mask, loss);
}

void variance_backward(const Tensor& p, double sigma, const Tensor& mask, const Tensor& dloss, Tensor& dp) {
  constexpr KernelId op = KernelId::variance_backward;
  const int64_t ch = check_loss(op, p, Tensor(), mask, dloss);
  check_numel(op, p, dp);
  if (kernel_device(op, {&p, &mask, &dloss, &dp}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::variance_backward(ch, p.size(2), p.size(3), f32_ptr(p), sigma, f32_ptr(mask), f32_ptr(dloss), f32_ptr(dp));
    return;
  }
  cpu::variance_backward(p, sigma, mask, dloss, dp);
}

void elementwise_loss_forward(ElementwiseLoss kind, const Tensor& a, const Tensor& target, const Tensor& mask,
                              Tensor& loss) {
  constexpr KernelId op = KernelId::elementwise_loss_forward;
  check_loss(op, a, target, mask, loss);
  kernel_device(op, {&a, &target, &mask, &loss});  // CPU only: fails clearly on CUDA tensors
  cpu::elementwise_loss_forward(kind, a, target, mask, loss);
}

void elementwise_loss_backward(ElementwiseLoss kind, const Tensor& a, const Tensor& target, const Tensor& mask,
                               const Tensor& dloss, Tensor& da) {
  constexpr KernelId op = KernelId::elementwise_loss_backward;
  check_loss(op, a, target, mask, dloss);
  check_numel(op, a, da);
  kernel_device(op, {&a, &target, &mask, &dloss, &da});
  cpu::elementwise_loss_backward(kind, a, target, mask, dloss, da);
}

}  // namespace sm::kernels
