// ReLU forward and backward (see activation.h).
#include "layers/activation.h"

#include <algorithm>

#include "layers/elementwise.h"

#ifdef SPINEMARK_CUDA
#include "cuda/ops_cuda.h"
#endif

namespace sm {

#ifdef SPINEMARK_CUDA
// The CUDA twin (cuda/elementwise.cu): same contract, float32 on the device.
static Var relu_cuda(const Var& x) {
  Tensor xc = x.value().contiguous();
  SM_CHECK(xc.dtype() == DType::F32, "relu: CUDA tensors are float32, got " << xc.str());
  Tensor y = Tensor::empty(xc.shape(), DType::F32, Device::CUDA);
  cuda::relu_forward(xc.numel(), xc.f32(), y.f32());
  return var_make_result(y, {x}, "relu", [x, xc](const Tensor& g) {
    Var xv = x;
    Tensor gc = g.contiguous();
    cuda::relu_backward(xc.numel(), xc.f32(), gc.f32(), xv.grad_buffer().f32());
  });
}
#endif

Var relu(const Var& x) {
#ifdef SPINEMARK_CUDA
  if (x.value().device() == Device::CUDA) return relu_cuda(x);
#endif
  check_cpu("relu", x.value());
  Tensor xc = x.value().contiguous();
  Tensor y = Tensor::empty(xc.shape(), xc.dtype());  // same shape as x
  dispatch_float(xc.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* a = xc.data<T>();
    T* o = y.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) o[i] = std::max(a[i], T(0));
  });
  // Backward reads the output: y > 0 exactly where x > 0.
  return var_make_result(y, {x}, "relu", [x, y](const Tensor& g) {
    Var xv = x;
    Tensor gc = g.contiguous();
    dispatch_float(gc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* gp = gc.data<T>();
      const T* o = y.data<T>();
      T* dx = xv.grad_buffer().template data<T>();
      const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) dx[i] += o[i] > T(0) ? gp[i] : T(0);
    });
  });
}

}  // namespace sm
