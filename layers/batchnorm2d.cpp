// BatchNorm2d layer (see batchnorm2d.h): shape checks, the graph node, and one kernel call each
// way (tensor/kernels/batchnorm.h, where the formulas are). The forward returns the statistics
// it normalised with (kernels::BatchNormSaved, the same on both devices); the backward consumes
// them and recomputes x̂ from x: nothing of the size of x is stored. In training, with a
// batch-statistics reducer installed (a data-parallel run), batchnorm2d_sync.cpp does the work.
#include "layers/batchnorm2d.h"

#include <vector>

#include "layers/batchnorm2d_sync.h"
#include "tensor/kernels/batchnorm.h"
#include "tensor/ops.h"

namespace sm {

Var batchnorm2d(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                bool training, const BatchNormParams& p) {
  if (BatchStatsReducer* reducer = batch_stats_reducer(); training && reducer)
    return batchnorm2d_sync(x, weight, bias, running_mean, running_var, p, *reducer);
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "batchnorm2d: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
  const kernels::BatchNormGeometry g{xv.size(0), xv.size(1), xv.size(2), xv.size(3)};
  for (const Var* v : {&weight, &bias})
    if (v->defined())
      SM_CHECK(v->value().dim() == 1 && v->value().size(0) == g.c && v->value().dtype() == xv.dtype(),
               "batchnorm2d: weight/bias " << shape_str(v->shape()) << " must be (" << g.c << ") for x "
                                           << shape_str(xv.shape()));
  for (const Tensor* t : {running_mean, running_var})
    if (t)
      SM_CHECK(t->dim() == 1 && t->size(0) == g.c && t->dtype() == xv.dtype() && t->is_contiguous(),
               "batchnorm2d: running statistic " << shape_str(t->shape()) << " must be (" << g.c << ") for x "
                                                 << shape_str(xv.shape()));
  SM_CHECK(training || (running_mean && running_var), "batchnorm2d: eval mode needs the running statistics");
  SM_CHECK(!training || g.n * g.h * g.w > 1, "batchnorm2d: training needs more than 1 value per channel, x is "
                                                 << shape_str(xv.shape()));

  Tensor xc = xv.contiguous();
  Tensor wc = weight.defined() ? weight.value().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.value().contiguous() : Tensor();
  Tensor y = Tensor::empty(xc.shape(), xc.dtype(), xc.device());  // (N, C, H, W)
  kernels::BatchNormSaved saved;
  if (training) {
    saved = kernels::batchnorm_forward_train(g, xc, wc, bc, running_mean, running_var, p.momentum, p.eps, y);
  } else {
    const bool backward_follows =
        grad_mode_enabled() && (x.requires_grad() || weight.requires_grad() || bias.requires_grad());
    saved = kernels::batchnorm_forward_eval(g, xc, wc, bc, *running_mean, *running_var, p.eps, y, backward_follows);
  }

  std::vector<Var> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(y, inputs, "batchnorm2d", [x, weight, bias, xc, wc, g, saved](const Tensor& gy) {
    kernels::batchnorm_backward(g, xc, wc, saved, gy.contiguous(), grad_target(x), grad_target(weight),
                                grad_target(bias));
  });
}

BatchNorm2d::BatchNorm2d(int64_t num_features, const BatchNormParams& p) : c_(num_features), p_(p) {
  SM_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive");
  weight_ = parameter_add("weight", Tensor::full({num_features}, 1.0));
  bias_ = parameter_add("bias", Tensor::zeros({num_features}));
  running_mean_ = buffer_add("running_mean", Tensor::zeros({num_features}));
  running_var_ = buffer_add("running_var", Tensor::full({num_features}, 1.0));
  num_batches_tracked_ = buffer_add("num_batches_tracked", Tensor::zeros({}));
}

Var BatchNorm2d::forward(const Var& x) {
  Var y = batchnorm2d(x, weight_, bias_, &running_mean_.value_mut(), &running_var_.value_mut(), training(), p_);
  if (training()) {
    Tensor& nbt = num_batches_tracked_.value_mut();  // ()
    if (nbt.device() == Device::CPU) {
      nbt.fill_(nbt.item() + 1.0);
    } else {  // += 1 on the device: no host round trip per layer
      static const Tensor one = Tensor::full({}, 1.0, nbt.dtype(), nbt.device());
      tensor_add_(nbt, one);
    }
  }
  return y;
}

}  // namespace sm
