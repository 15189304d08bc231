// Dispatch of the pooling kernels (contract: pooling.h).
#include "tensor/kernels/pooling.h"

#include "cuda/ops_cuda.h"
#include "tensor/kernels/cpu/cpu_kernels.h"
#include "tensor/kernels/dispatch.h"

namespace sm::kernels {

namespace {
void check_pool(KernelId op, const Pool2dGeometry& g) {
  SM_CHECK(g.n > 0 && g.c > 0 && g.kernel > 0 && g.stride > 0 && g.pad >= 0 && 2 * g.pad <= g.kernel &&
               g.out_h() > 0 && g.out_w() > 0,
           op << ": invalid geometry (kernel " << g.kernel << ", stride " << g.stride << ", padding " << g.pad
              << ", input " << g.h << "x" << g.w << ")");
}
[[maybe_unused]] cuda::PoolShape cuda_shape(const Pool2dGeometry& g) {
  cuda::PoolShape ps;
  ps.n = g.n, ps.c = g.c, ps.h = g.h, ps.w = g.w, ps.kernel = g.kernel, ps.stride = g.stride, ps.pad = g.pad;
  return ps;
}
int32_t* argmax_ptr(const MaxPoolSaved& s) { return s.argmax ? static_cast<int32_t*>(s.argmax->data) : nullptr; }
}  // namespace

MaxPoolSaved max_pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, bool save) {
  constexpr KernelId op = KernelId::max_pool2d_forward;
  check_pool(op, g);
  check_numel(op, x, g.n * g.c * g.h * g.w, "x");
  check_numel(op, y, g.n * g.c * g.out_h() * g.out_w(), "y");
  const Device d = kernel_device(op, {&x, &y});
  MaxPoolSaved saved;
  if (save) saved.argmax = std::make_shared<Storage>(size_t(y.numel()) * sizeof(int32_t), d);
  if (d == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::max_pool2d_forward(cuda_shape(g), f32_ptr(x), f32_ptr(y), argmax_ptr(saved));
    return saved;
  }
  cpu::max_pool2d_forward(g, x, y, argmax_ptr(saved));
  return saved;
}

void max_pool2d_backward(const Pool2dGeometry& g, const MaxPoolSaved& saved, const Tensor& dy, Tensor& dx) {
  constexpr KernelId op = KernelId::max_pool2d_backward;
  check_pool(op, g);
  check_numel(op, dy, g.n * g.c * g.out_h() * g.out_w(), "dy");
  check_numel(op, dx, g.n * g.c * g.h * g.w, "dx");
  SM_CHECK(saved.argmax && saved.argmax->bytes >= size_t(dy.numel()) * sizeof(int32_t),
           op << ": the forward saved no argmax (it ran without save)");
  const Device d = kernel_device(op, {&dy, &dx});
  SM_CHECK(saved.argmax->device == d, op << ": the saved argmax lives on another device than the gradients");
  if (d == Device::CUDA) {
    if constexpr (kCudaBuilt) cuda::max_pool2d_backward(cuda_shape(g), argmax_ptr(saved), f32_ptr(dy), f32_ptr(dx));
    return;
  }
  cpu::max_pool2d_backward(g, argmax_ptr(saved), dy, dx);
}

void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  constexpr KernelId op = KernelId::global_avg_pool_forward;
  SM_CHECK(x.dim() == 4 && x.size(2) * x.size(3) > 0, op << ": x " << x.str() << " must be (N, C, H, W), not empty");
  check_numel(op, y, x.size(0) * x.size(1), "y");
  if (kernel_device(op, {&x, &y}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::global_avg_pool_forward(x.size(0), x.size(1), x.size(2), x.size(3), f32_ptr(x), f32_ptr(y));
    return;
  }
  cpu::global_avg_pool_forward(x, y);
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  constexpr KernelId op = KernelId::global_avg_pool_backward;
  SM_CHECK(dx.dim() == 4 && dx.size(2) * dx.size(3) > 0, op << ": dx " << dx.str() << " must be (N, C, H, W), not empty");
  check_numel(op, dy, dx.size(0) * dx.size(1), "dy");
  if (kernel_device(op, {&dy, &dx}) == Device::CUDA) {
    if constexpr (kCudaBuilt)
      cuda::global_avg_pool_backward(dx.size(0), dx.size(1), dx.size(2), dx.size(3), f32_ptr(dy), f32_ptr(dx));
    return;
  }
  cpu::global_avg_pool_backward(dy, dx);
}

}  // namespace sm::kernels
