// Dispatch of the fused optimizer steps (contract: optim.h).
#include "tensor/kernels/optim.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

void sgd_step(const SgdStep& s, Tensor& p, const Tensor& g, Tensor* buf) {
  constexpr KernelId op = KernelId::sgd_step;
  check_numel(op, p, g);
  if (buf) check_numel(op, p, *buf);
  SM_CHECK(buf || s.momentum == 0.0, op << ": momentum needs a momentum buffer");
  if (kernel_device(op, {&p, &g, buf}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::sgd_step(p.numel(), f32_ptr(p), f32_ptr(g), f32_ptr(buf), s.lr, s.momentum, s.dampening, s.weight_decay,
                     s.nesterov, s.step);
    return;
  }
  cpu::sgd_step(s, p, g, buf);
}

void adam_step(const AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v) {
  constexpr KernelId op = KernelId::adam_step;
  check_numel(op, p, g), check_numel(op, p, m), check_numel(op, p, v);
  if (kernel_device(op, {&p, &g, &m, &v}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::adam_step(p.numel(), f32_ptr(p), f32_ptr(g), f32_ptr(m), f32_ptr(v), s.lr, s.beta1, s.beta2, s.eps,
                      s.weight_decay, s.decoupled, s.step);
    return;
  }
  cpu::adam_step(s, p, g, m, v);
}

void rmsprop_step(const RmspropStep& s, Tensor& p, const Tensor& g, Tensor& square_avg, Tensor* buf, Tensor* grad_avg) {
  constexpr KernelId op = KernelId::rmsprop_step;
  check_numel(op, p, g), check_numel(op, p, square_avg);
  if (buf) check_numel(op, p, *buf);
  if (grad_avg) check_numel(op, p, *grad_avg);
  SM_CHECK(buf || s.momentum == 0.0, op << ": momentum needs a momentum buffer");
  SM_CHECK(grad_avg || !s.centered, op << ": centered RMSprop needs a gradient average");
  if (kernel_device(op, {&p, &g, &square_avg, buf, grad_avg}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::rmsprop_step(p.numel(), f32_ptr(p), f32_ptr(g), f32_ptr(square_avg), f32_ptr(buf), f32_ptr(grad_avg), s.lr,
                         s.alpha, s.eps, s.weight_decay, s.momentum, s.centered);
    return;
  }
  cpu::rmsprop_step(s, p, g, square_avg, buf, grad_avg);
}

}  // namespace sm::kernels
