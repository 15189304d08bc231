// CPU pooling kernels (contract: tensor/kernels/pooling.h).
#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

// For every output: the first maximum of its window in row-major order (strict >), padding
// never wins; its flat index in the (H, W) plane goes to argmax when asked.
void max_pool2d_forward(const kernels::Pool2dGeometry& g, const Tensor& x, Tensor& y, int32_t* argmax) {
  const int64_t H = g.h, W = g.w, Ho = g.out_h(), Wo = g.out_w(), k = g.kernel, s = g.stride, pad = g.pad;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
#pragma omp parallel for schedule(static) if (g.n * g.c * H * W > kParallelMin)
    for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
      const T* plane = xp + nc * H * W;  // (H, W)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t i0 = oh * s - pad, j0 = ow * s - pad;
          if (i0 >= 0 && i0 + k <= H && j0 >= 0 && j0 + k <= W) {
            // Window inside the plane (all but the border outputs): no bounds tests; the first
            // element seeds the maximum, as `best < 0` does below.
            int64_t best = i0 * W + j0;
            T bv = plane[best];
            for (int64_t i = i0; i < i0 + k; ++i)
              for (int64_t j = j0; j < j0 + k; ++j) {
                const T v = plane[i * W + j];
                if (v > bv) bv = v, best = i * W + j;
              }
            yp[(nc * Ho + oh) * Wo + ow] = bv;
            if (argmax) argmax[(nc * Ho + oh) * Wo + ow] = int32_t(best);
            continue;
          }
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
          if (argmax) argmax[(nc * Ho + oh) * Wo + ow] = int32_t(best);
        }
    }
  });
}

// dx[argmax(o)] += dy[o] for every output o; planes are independent.
void max_pool2d_backward(const kernels::Pool2dGeometry& g, const int32_t* argmax, const Tensor& dy, Tensor& dx) {
  const int64_t HW = g.h * g.w, HWo = g.out_h() * g.out_w();
  dispatch_float(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* gp = dy.data<T>();
    T* d = dx.data<T>();
#pragma omp parallel for schedule(static) if (g.n * g.c * HW > kParallelMin)
    for (int64_t nc = 0; nc < g.n * g.c; ++nc)
      for (int64_t o = nc * HWo, oe = o + HWo; o < oe; ++o) d[nc * HW + argmax[o]] += gp[o];
  });
}

// y[n, c] = (1/HW) Σ x[n, c, :, :], summed in double.
void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  const int64_t NC = x.size(0) * x.size(1), HW = x.size(2) * x.size(3);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t nc = 0; nc < NC; ++nc) {
      double s = 0;
      for (int64_t i = 0; i < HW; ++i) s += double(xp[nc * HW + i]);
      yp[nc] = T(s / double(HW));
    }
  });
}

// dx[n, c, i, j] += dy[n, c] / (H W)
void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  const int64_t NC = dx.size(0) * dx.size(1), HW = dx.size(2) * dx.size(3);
  dispatch_float(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* gp = dy.data<T>();
    T* d = dx.data<T>();
    for (int64_t nc = 0; nc < NC; ++nc) {
      const T v = gp[nc] / T(HW);
      for (int64_t i = 0; i < HW; ++i) d[nc * HW + i] += v;
    }
  });
}

}  // namespace sm::cpu
