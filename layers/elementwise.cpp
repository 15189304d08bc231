// Residual add, fused add+ReLU and reshape (see elementwise.h).
#include "layers/elementwise.h"

#include <algorithm>

#include "layers/cuda_glue.h"
#include "tensor/ops.h"

namespace sm {

#ifdef SPINEMARK_CUDA
// The CUDA twins (cuda/elementwise.cu). add's backward is the CPU one: grad_accumulate adds on the
// device (tensor_add_ dispatches).
static Var add_cuda(const Var& a, const Var& b) {
  Tensor ac = a.value().contiguous(), bc = b.value().contiguous();
  Tensor out = cuda_empty(ac.shape());  // (same shape as a and b)
  cuda::add_forward(out.numel(), cuda_f32_ptr("add", ac), cuda_f32_ptr("add", bc), cuda_f32_ptr("add", out));
  return var_make_result(out, {a, b}, "add", [a, b](const Tensor& g) {
    a.grad_accumulate(g);
    b.grad_accumulate(g);
  });
}

static Var add_relu_cuda(const Var& a, const Var& b) {
  Tensor ac = a.value().contiguous(), bc = b.value().contiguous();
  Tensor out = cuda_empty(ac.shape());  // (same shape as a and b)
  cuda::add_relu_forward(out.numel(), cuda_f32_ptr("add_relu", ac), cuda_f32_ptr("add_relu", bc), cuda_f32_ptr("add_relu", out));
  return var_make_result(out, {a, b}, "add_relu", [a, b, out](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::add_relu_backward(out.numel(), cuda_f32_ptr("add_relu", out), cuda_f32_ptr("add_relu", gc),
                            cuda_grad_ptr("add_relu", a), cuda_grad_ptr("add_relu", b));
  });
}
#endif

Var add(const Var& a, const Var& b) {
  check_same_shape("add", a.value(), b.value());
#ifdef SPINEMARK_CUDA
  if (a.value().device() == Device::CUDA) return add_cuda(a, b);
#endif
  Tensor out = tensor_add(a.value(), b.value());  // (same shape as a and b)
  return var_make_result(out, {a, b}, "add", [a, b](const Tensor& g) {
    // d(a+b)/da = d(a+b)/db = 1
    Var av = a, bv = b;
    av.grad_accumulate(g);
    bv.grad_accumulate(g);
  });
}

Var add_relu(const Var& a, const Var& b) {
  check_same_shape("add_relu", a.value(), b.value());
#ifdef SPINEMARK_CUDA
  if (a.value().device() == Device::CUDA) return add_relu_cuda(a, b);
#endif
  check_cpu("add_relu", a.value());
  SM_CHECK(a.value().dtype() == b.value().dtype(), "add_relu: dtypes differ");
  Tensor ac = a.value().contiguous(), bc = b.value().contiguous();
  Tensor out = Tensor::empty(ac.shape(), ac.dtype());  // (same shape as a and b)
  dispatch_float(ac.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *x = ac.data<T>(), *y = bc.data<T>();
    T* o = out.data<T>();
    const int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) o[i] = std::max(x[i] + y[i], T(0));
  });
  return var_make_result(out, {a, b}, "add_relu", [a, b, out](const Tensor& g) {
    // out = max(a + b, 0): da = db = g * [out > 0]
    Var av = a, bv = b;
    Tensor gc = g.contiguous();
    dispatch_float(gc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* gp = gc.data<T>();
      const T* op = out.data<T>();
      const int64_t n = out.numel();
      T* da = av.requires_grad() ? av.grad_buffer().template data<T>() : nullptr;
      T* db = bv.requires_grad() ? bv.grad_buffer().template data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) {
        const T gi = op[i] > T(0) ? gp[i] : T(0);
        if (da) da[i] += gi;
        if (db) db[i] += gi;
      }
    });
  });
}

Var reshape(const Var& x, const Shape& shape) {
  Tensor out = x.value().reshape(shape);
  Shape in_shape = x.shape();
  return var_make_result(out, {x}, "reshape", [x, in_shape](const Tensor& g) {
    Var xv = x;
    xv.grad_accumulate(g.reshape(in_shape));  // dx = g viewed with x's shape
  });
}

}  // namespace sm
