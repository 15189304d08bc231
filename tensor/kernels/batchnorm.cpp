// Dispatch of the BatchNorm2d kernels (contract: batchnorm.h).
#include "tensor/kernels/batchnorm.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
void check_bn(KernelId op, const BatchNormGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  SM_CHECK(g.n > 0 && g.c > 0 && g.h > 0 && g.w > 0, op << ": empty input");
  check_numel(op, x, g.n * g.c * g.h * g.w, "x");
  if (weight.defined()) check_numel(op, weight, g.c, "weight");
  if (bias.defined()) check_numel(op, bias, g.c, "bias");
}
BatchNormSaved saved_make(bool training, const Tensor& x, int64_t c) {
  return {training, Tensor::empty({c}, x.dtype(), x.device()), Tensor::empty({c}, x.dtype(), x.device())};
}
}  // namespace

BatchNormSaved batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                                       const Tensor& bias, Tensor* running_mean, Tensor* running_var,
                                       double momentum, double eps, Tensor& y) {
  constexpr KernelId op = KernelId::batchnorm_forward_train;
  check_bn(op, g, x, weight, bias);
  check_numel(op, y, x.numel(), "y");
  SM_CHECK(g.n * g.h * g.w > 1, op << ": training needs more than one value per channel");
  for (Tensor* r : {running_mean, running_var})
    if (r) check_numel(op, *r, g.c, "running statistic");
  const Device d = kernel_device(op, {&x, &weight, &bias, running_mean, running_var, &y});
  BatchNormSaved saved = saved_make(true, x, g.c);
  if (d == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::batchnorm_forward_train(g.n, g.c, g.h, g.w, f32_ptr(x), f32_ptr(weight), f32_ptr(bias), f32_ptr(running_mean),
                                    f32_ptr(running_var), momentum, eps, f32_ptr(y), f32_ptr(saved.mean),
                                    f32_ptr(saved.invstd));
    return saved;
  }
  cpu::batchnorm_forward_train(g, x, weight, bias, running_mean, running_var, momentum, eps, y, saved);
  return saved;
}

BatchNormSaved batchnorm_forward_eval(const BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                                      const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
                                      double eps, Tensor& y, bool save) {
  constexpr KernelId op = KernelId::batchnorm_forward_eval;
  check_bn(op, g, x, weight, bias);
  check_numel(op, y, x.numel(), "y");
  check_numel(op, running_mean, g.c, "running_mean");
  check_numel(op, running_var, g.c, "running_var");
  const Device d = kernel_device(op, {&x, &weight, &bias, &running_mean, &running_var, &y});
  BatchNormSaved saved;
  if (save) saved = saved_make(false, x, g.c);
  if (d == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::batchnorm_forward_eval(g.n, g.c, g.h, g.w, f32_ptr(x), f32_ptr(weight), f32_ptr(bias), f32_ptr(running_mean),
                                   f32_ptr(running_var), eps, f32_ptr(y), f32_ptr(saved.mean), f32_ptr(saved.invstd));
    return saved;
  }
  cpu::batchnorm_forward_eval(g, x, weight, bias, running_mean, running_var, eps, y, save ? &saved : nullptr);
  return saved;
}

void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& weight, const BatchNormSaved& saved,
                        const Tensor& dy, Tensor* dx, Tensor* dweight, Tensor* dbias) {
  constexpr KernelId op = KernelId::batchnorm_backward;
  check_bn(op, g, x, weight, Tensor());
  SM_CHECK(saved.mean.defined() && saved.invstd.defined(), op << ": the forward saved no statistics");
  check_numel(op, saved.mean, g.c, "saved mean");
  check_numel(op, saved.invstd, g.c, "saved invstd");
  check_numel(op, dy, x.numel(), "dy");
  if (dx) check_numel(op, *dx, x.numel(), "dx");
  if (dweight) check_numel(op, *dweight, g.c, "dweight");
  if (dbias) check_numel(op, *dbias, g.c, "dbias");
  if (kernel_device(op, {&x, &weight, &saved.mean, &saved.invstd, &dy, dx, dweight, dbias}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::batchnorm_backward(saved.training, g.n, g.c, g.h, g.w, f32_ptr(x), f32_ptr(weight), f32_ptr(saved.mean),
                               f32_ptr(saved.invstd), f32_ptr(dy), f32_ptr(dx), f32_ptr(dweight), f32_ptr(dbias));
    return;
  }
  cpu::batchnorm_backward(g, x, weight, saved, dy, dx, dweight, dbias);
}

}  // namespace sm::kernels
