// MaxPool2d and global average pooling, forward and backward (see pooling.h).
#include "layers/pooling.h"

#include <memory>
#include <vector>

#include "layers/conv2d.h"
#include "layers/cuda_glue.h"
#include "layers/elementwise.h"

namespace sm {

#ifdef SPINEMARK_CUDA
// The CUDA twins (cuda/pooling.cu). Max pooling keeps the argmax (int32 index into each (H, W)
// plane) on the device, only when a backward will need it.
static Var max_pool2d_cuda(const Var& x, const cuda::PoolShape& ps) {
  Tensor xc = x.value().contiguous();
  Tensor y = cuda_empty({ps.n, ps.c, ps.out_h(), ps.out_w()});  // (N, C, Ho, Wo)
  std::shared_ptr<cuda::DeviceBuffer> argmax;
  if (grad_mode_enabled() && x.requires_grad())
    argmax = std::make_shared<cuda::DeviceBuffer>(size_t(y.numel()) * sizeof(int32_t));  // (N, C, Ho, Wo)
  cuda::max_pool2d_forward(ps, cuda_f32_ptr("max_pool2d", xc), cuda_f32_ptr("max_pool2d", y),
                           argmax ? argmax->as<int32_t>() : nullptr);
  return var_make_result(y, {x}, "max_pool2d", [x, ps, argmax](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::max_pool2d_backward(ps, argmax->as<int32_t>(), cuda_f32_ptr("max_pool2d", gc), cuda_grad_ptr("max_pool2d", x));
  });
}

static Var global_avg_pool_cuda(const Var& x) {
  const Tensor xc = x.value().contiguous();
  const int64_t N = xc.size(0), C = xc.size(1), H = xc.size(2), W = xc.size(3);
  Tensor y = cuda_empty({N, C});  // (N, C)
  cuda::global_avg_pool_forward(N, C, H, W, cuda_f32_ptr("global_avg_pool", xc), cuda_f32_ptr("global_avg_pool", y));
  return var_make_result(y, {x}, "global_avg_pool", [x, N, C, H, W](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::global_avg_pool_backward(N, C, H, W, cuda_f32_ptr("global_avg_pool", gc), cuda_grad_ptr("global_avg_pool", x));
  });
}
#endif

Var max_pool2d(const Var& x, const MaxPool2dParams& p) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "max_pool2d: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
#ifdef SPINEMARK_CUDA
  const bool on_gpu = xv.device() == Device::CUDA;
#else
  const bool on_gpu = false;
#endif
  if (!on_gpu) check_cpu("max_pool2d", xv);
  const int64_t k = p.kernel, s = p.stride > 0 ? p.stride : p.kernel, pad = p.padding;
  SM_CHECK(k > 0 && pad >= 0 && 2 * pad <= k,
           "max_pool2d: kernel " << k << " padding " << pad << ": padding must be at most half the kernel");
  const int64_t N = xv.size(0), C = xv.size(1), H = xv.size(2), W = xv.size(3);
  const int64_t Ho = conv_out_size(H, k, s, pad, 1), Wo = conv_out_size(W, k, s, pad, 1);
  SM_CHECK(Ho > 0 && Wo > 0, "max_pool2d: input " << shape_str(xv.shape()) << " too small for kernel " << k);
#ifdef SPINEMARK_CUDA
  if (on_gpu) {
    cuda::PoolShape ps;
    ps.n = N, ps.c = C, ps.h = H, ps.w = W, ps.kernel = k, ps.stride = s, ps.pad = pad;
    return max_pool2d_cuda(x, ps);
  }
#endif
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty({N, C, Ho, Wo}, xv.dtype());                     // (N, C, Ho, Wo)
  auto argmax = std::make_shared<std::vector<int32_t>>(size_t(N * C * Ho * Wo));  // (N, C, Ho, Wo): index in H*W
  dispatch_float(xv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    int32_t* am = argmax->data();
#pragma omp parallel for schedule(static) if (N * C * H * W > (1 << 15))
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const T* plane = xp + nc * H * W;  // (H, W)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          int64_t best = -1;
          T bv = T(0);
          for (int64_t i = oh * s - pad, ie = i + k; i < ie; ++i) {
            if (i < 0 || i >= H) continue;
            for (int64_t j = ow * s - pad, je = j + k; j < je; ++j) {
              if (j < 0 || j >= W) continue;
              const T v = plane[i * W + j];
              if (best < 0 || v > bv) bv = v, best = i * W + j;  // strict >: first maximum wins
            }
          }
          yp[(nc * Ho + oh) * Wo + ow] = bv;
          am[(nc * Ho + oh) * Wo + ow] = int32_t(best);
        }
    }
  });
  return var_make_result(y, {x}, "max_pool2d", [x, argmax, N, C, H, W, Ho, Wo](const Tensor& g) {
    // dx[argmax(o)] += g[o] for every output o
    Var xv = x;
    Tensor gc = g.contiguous();
    dispatch_float(gc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* gp = gc.data<T>();
      T* dx = xv.grad_buffer().template data<T>();
      const int32_t* am = argmax->data();
#pragma omp parallel for schedule(static) if (N * C * H * W > (1 << 15))
      for (int64_t nc = 0; nc < N * C; ++nc)
        for (int64_t o = nc * Ho * Wo, oe = o + Ho * Wo; o < oe; ++o) dx[nc * H * W + am[o]] += gp[o];
    });
  });
}

Var global_avg_pool(const Var& x) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "global_avg_pool: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
#ifdef SPINEMARK_CUDA
  if (xv.device() == Device::CUDA) return global_avg_pool_cuda(x);
#endif
  check_cpu("global_avg_pool", xv);
  const int64_t N = xv.size(0), C = xv.size(1), HW = xv.size(2) * xv.size(3);
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty({N, C}, xv.dtype());  // (N, C)
  dispatch_float(xv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    for (int64_t nc = 0; nc < N * C; ++nc) {
      double s = 0;
      for (int64_t i = 0; i < HW; ++i) s += double(xp[nc * HW + i]);
      yp[nc] = T(s / double(HW));
    }
  });
  return var_make_result(y, {x}, "global_avg_pool", [x, N, C, HW](const Tensor& g) {
    // dx[n, c, i, j] += g[n, c] / (H W)
    Var xv = x;
    Tensor gc = g.contiguous();
    dispatch_float(gc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* gp = gc.data<T>();
      T* dx = xv.grad_buffer().template data<T>();
      for (int64_t nc = 0; nc < N * C; ++nc) {
        const T v = gp[nc] / T(HW);
        for (int64_t i = 0; i < HW; ++i) dx[nc * HW + i] += v;
      }
    });
  });
}

}  // namespace sm
