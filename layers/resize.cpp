// Bilinear resize forward and backward (see resize.h); follows PyTorch's upsample_bilinear2d.
#include "layers/resize.h"

#include <vector>

#include "layers/cuda_glue.h"
#include "layers/elementwise.h"
#include "tensor/bilinear_taps.h"

namespace sm {

namespace {

#ifdef SPINEMARK_CUDA
// The CUDA twin (cuda/resize.cu): the same taps (tensor/bilinear_taps.h), uploaded once per size.
Var resize_bilinear_cuda(const Var& x, int64_t out_h, int64_t out_w) {
  Tensor xc = x.value().contiguous();
  const int64_t N = xc.size(0), C = xc.size(1), H = xc.size(2), W = xc.size(3);
  Tensor y = cuda_empty({N, C, out_h, out_w});  // (N, C, Ho, Wo)
  cuda::resize_bilinear_forward(N, C, H, W, out_h, out_w, cuda_f32_ptr("resize_bilinear", xc),
                                cuda_f32_ptr("resize_bilinear", y));
  return var_make_result(y, {x}, "resize_bilinear", [x, N, C, H, W, out_h, out_w](const Tensor& g) {
    Tensor gc = g.contiguous();
    cuda::resize_bilinear_backward(N, C, H, W, out_h, out_w, cuda_f32_ptr("resize_bilinear", gc),
                                   cuda_grad_ptr("resize_bilinear", x));
  });
}
#endif

}  // namespace

Var resize_bilinear(const Var& x, int64_t out_h, int64_t out_w) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4 && out_h > 0 && out_w > 0,
           "resize_bilinear: x " << shape_str(xv.shape()) << " must be (N, C, H, W) and the size (" << out_h << ", "
                                 << out_w << ") positive");
#ifdef SPINEMARK_CUDA
  if (xv.device() == Device::CUDA) return resize_bilinear_cuda(x, out_h, out_w);
#endif
  check_cpu("resize_bilinear", xv);
  const int64_t NC = xv.size(0) * xv.size(1), H = xv.size(2), W = xv.size(3);
  auto th = std::make_shared<BilinearTaps>(bilinear_taps(H, out_h));
  auto tw = std::make_shared<BilinearTaps>(bilinear_taps(W, out_w));
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty({xv.size(0), xv.size(1), out_h, out_w}, xv.dtype());  // (N, C, Ho, Wo)
  dispatch_float(xv.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = xc.data<T>();
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
  return var_make_result(y, {x}, "resize_bilinear", [x, th, tw, NC, H, W, out_h, out_w](const Tensor& g) {
    // dx[i, j] += Σ_{o reads (i, j)} weight(o, i, j) · g[o]; planes are independent.
    Var xv = x;
    Tensor gc = g.contiguous();
    dispatch_float(gc.dtype(), [&](auto zero) {
      using T = decltype(zero);
      const T* gp = gc.data<T>();
      T* dx = xv.grad_buffer().template data<T>();
#pragma omp parallel for schedule(static) if (NC * out_h * out_w > (1 << 15))
      for (int64_t nc = 0; nc < NC; ++nc) {
        T* plane = dx + nc * H * W;  // (H, W)
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
  });
}

}  // namespace sm
