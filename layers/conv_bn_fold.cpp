// Conv + BatchNorm folding (the math: conv_bn_fold.h).
#include "layers/conv_bn_fold.h"

#include <cmath>

namespace sm {

FoldedConv::FoldedConv(const Conv2d& conv, const BatchNorm2d* bn) : p_(conv.params()) {
  const Tensor& w = conv.weight().value();  // (Cout, Cin, kh, kw)
  const int64_t cout = w.size(0), per_filter = w.numel() / cout;
  // Folded on the host in float64, then put back in the weights' dtype and on their device.
  Tensor w64 = w.to(Device::CPU).to(DType::F64).contiguous().clone();
  Tensor b64 = conv.bias().defined() ? conv.bias().value().to(Device::CPU).to(DType::F64).contiguous().clone()
                                     : Tensor::zeros({cout}, DType::F64);
  if (bn) {
    SM_CHECK(bn->running_mean().value().numel() == cout,
             "FoldedConv: BatchNorm2d of " << bn->running_mean().value().numel() << " channels after a conv with "
                                           << cout << " outputs");
    auto host = [](const Var& v) { return v.value().to(Device::CPU).to(DType::F64).contiguous(); };
    const Tensor mean = host(bn->running_mean()), var = host(bn->running_var());
    const Tensor gamma = bn->weight().defined() ? host(bn->weight()) : Tensor::full({cout}, 1.0, DType::F64);
    const Tensor beta = bn->bias().defined() ? host(bn->bias()) : Tensor::zeros({cout}, DType::F64);
    double* wp = w64.f64();
    double* bp = b64.f64();
    for (int64_t k = 0; k < cout; ++k) {
      const double s = gamma.f64()[k] / std::sqrt(var.f64()[k] + bn->params().eps);
      for (int64_t i = 0; i < per_filter; ++i) wp[k * per_filter + i] *= s;
      bp[k] = s * (bp[k] - mean.f64()[k]) + beta.f64()[k];
    }
  }
  weight_ = w64.to(w.dtype()).to(w.device());
  bias_ = b64.to(w.dtype()).to(w.device());
}

Var FoldedConv::forward(const Var& x, bool relu) {
  const kernels::Conv2dGeometry g = conv2d_geometry(x.value(), weight_, bias_, p_);
  Tensor y = Tensor::empty({g.n, g.k, g.out_h(), g.out_w()}, x.value().dtype(), x.value().device());
  kernels::Conv2dForwardOptions o;
  o.relu = relu;
  o.cache = &cache_;
  kernels::conv2d_forward(g, x.value().contiguous(), weight_, bias_, y, o);
  return Var(y);
}

}  // namespace sm
