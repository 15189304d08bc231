// CPU bilinear resize kernels (contract: tensor/kernels/resize.h); follows PyTorch's
// upsample_bilinear2d with align_corners = False, through the taps of tensor/bilinear_taps.h.
#include "tensor/bilinear_taps.h"
#include "tensor/kernels/cpu/cpu_kernels.h"

namespace sm::cpu {

// y[o] = Σ of the four taps of o: rows (i0, i1) weighted (a0, a1), columns (j0, j1) weighted
// (b0, b1).
void resize_bilinear_forward(const Tensor& x, Tensor& y) {
  const int64_t NC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), out_h = y.size(2), out_w = y.size(3);
  const BilinearTaps taps_h = bilinear_taps(H, out_h), taps_w = bilinear_taps(W, out_w);
  const BilinearTaps* th = &taps_h;
  const BilinearTaps* tw = &taps_w;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
#pragma omp parallel for schedule(static) if (NC * out_h * out_w > (1 << 15))
    for (int64_t nc = 0; nc < NC; ++nc) {
      const T* plane = xp + nc * H * W;  // (H, W)
      for (int64_t oh = 0; oh < out_h; ++oh) {
        const T* r0 = plane + th->i0[oh] * W;
        const T* r1 = plane + th->i1[oh] * W;
        const T a0 = T(th->w0[oh]), a1 = T(th->w1[oh]);
        T* out = yp + (nc * out_h + oh) * out_w;
        for (int64_t ow = 0; ow < out_w; ++ow) {
          const int64_t j0 = tw->i0[ow], j1 = tw->i1[ow];
          const T b0 = T(tw->w0[ow]), b1 = T(tw->w1[ow]);
          out[ow] = a0 * (b0 * r0[j0] + b1 * r0[j1]) + a1 * (b0 * r1[j0] + b1 * r1[j1]);
        }
      }
    }
  });
}

// dx[i, j] += Σ_{o reads (i, j)} weight(o, i, j) · dy[o]: the transpose; planes are independent.
void resize_bilinear_backward(const Tensor& dy, Tensor& dx) {
  const int64_t NC = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3), out_h = dy.size(2), out_w = dy.size(3);
  const BilinearTaps taps_h = bilinear_taps(H, out_h), taps_w = bilinear_taps(W, out_w);
  const BilinearTaps* th = &taps_h;
  const BilinearTaps* tw = &taps_w;
  dispatch_float(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* gp = dy.data<T>();
    T* d = dx.data<T>();
#pragma omp parallel for schedule(static) if (NC * out_h * out_w > (1 << 15))
    for (int64_t nc = 0; nc < NC; ++nc) {
      T* plane = d + nc * H * W;  // (H, W)
      for (int64_t oh = 0; oh < out_h; ++oh) {
        T* r0 = plane + th->i0[oh] * W;
        T* r1 = plane + th->i1[oh] * W;
        const T a0 = T(th->w0[oh]), a1 = T(th->w1[oh]);
        const T* go = gp + (nc * out_h + oh) * out_w;
        for (int64_t ow = 0; ow < out_w; ++ow) {
          const int64_t j0 = tw->i0[ow], j1 = tw->i1[ow];
          const T b0 = T(tw->w0[ow]), b1 = T(tw->w1[ow]);
          r0[j0] += a0 * b0 * go[ow];
          r0[j1] += a0 * b1 * go[ow];
          r1[j0] += a1 * b0 * go[ow];
          r1[j1] += a1 * b1 * go[ow];
        }
      }
    }
  });
}

}  // namespace sm::cpu
