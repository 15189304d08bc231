// Bilinear resize layer (see resize.h): the graph node and one kernel call each way
// (tensor/kernels/resize.h; PyTorch's upsample_bilinear2d, align_corners = False).
#include "layers/resize.h"

#include "tensor/kernels/resize.h"

namespace sm {

Var resize_bilinear(const Var& x, int64_t out_h, int64_t out_w) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4 && out_h > 0 && out_w > 0,
           "resize_bilinear: x " << shape_str(xv.shape()) << " must be (N, C, H, W) and the size (" << out_h << ", "
                                 << out_w << ") positive");
  Tensor xc = xv.contiguous();
  Tensor y = Tensor::empty({xc.size(0), xc.size(1), out_h, out_w}, xc.dtype(), xc.device());  // (N, C, Ho, Wo)
  kernels::resize_bilinear_forward(xc, y);
  return var_make_result(y, {x}, "resize_bilinear", [x](const Tensor& g) {
    kernels::resize_bilinear_backward(g.contiguous(), x.grad_buffer());
  });
}

}  // namespace sm
