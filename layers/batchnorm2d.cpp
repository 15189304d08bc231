// BatchNorm2d forward and backward, training and eval (see batchnorm2d.h). Per channel c, with
// M = N*H*W elements, x̂ = (x - μ)·s, s = 1/sqrt(σ² + eps), y = γ x̂ + β:
//   training (μ, σ² of the batch; σ² biased):
//     dγ += Σ g x̂,   dβ += Σ g,   dx += γ s (g - Σg/M - x̂ Σ(g x̂)/M)
//   eval (μ, σ² the running statistics, constants):
//     dγ += Σ g x̂,   dβ += Σ g,   dx += γ s g
// x̂ is recomputed in backward from x (which the graph keeps anyway) and the per-channel μ, s:
// nothing of the size of x is stored. Sums run in double, in a fixed order per channel.
#include "layers/batchnorm2d.h"

#include <cmath>
#include <vector>

#include "layers/cuda_glue.h"
#include "layers/elementwise.h"
#include "tensor/ops.h"

namespace sm {

namespace {

struct BnGeom {
  int64_t n, c, hw;
  int64_t m() const { return n * hw; }
};

// Per-channel mean and biased variance, two passes (stable).
template <class T> void channel_stats(const BnGeom& g, const T* x, std::vector<double>& mean, std::vector<double>& var) {
#pragma omp parallel for schedule(static) if (g.n * g.c * g.hw > (1 << 15))
  for (int64_t c = 0; c < g.c; ++c) {
    double s = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;  // (H*W)
      for (int64_t i = 0; i < g.hw; ++i) s += double(p[i]);
    }
    const double mu = s / double(g.m());
    double v = 0;
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        const double d = double(p[i]) - mu;
        v += d * d;
      }
    }
    mean[c] = mu;
    var[c] = v / double(g.m());
  }
}

// y = x * scale[c] + shift[c]
template <class T> void channel_affine(const BnGeom& g, const T* x, const std::vector<double>& scale,
                                       const std::vector<double>& shift, T* y) {
#pragma omp parallel for schedule(static) if (g.n * g.c * g.hw > (1 << 15))
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const int64_t c = nc % g.c;
    const T a = T(scale[c]), b = T(shift[c]);
    const T* p = x + nc * g.hw;
    T* q = y + nc * g.hw;
    for (int64_t i = 0; i < g.hw; ++i) q[i] = p[i] * a + b;
  }
}

template <class T> void bn_backward(const BnGeom& g, bool training, const T* x, const T* gy,
                                    const std::vector<double>& mean, const std::vector<double>& invstd,
                                    const std::vector<double>& gamma, T* dx, T* dgamma, T* dbeta) {
#pragma omp parallel for schedule(static) if (g.n * g.c * g.hw > (1 << 15))
  for (int64_t c = 0; c < g.c; ++c) {
    const double mu = mean[c], s = invstd[c];
    double sg = 0, sgx = 0;  // Σ g, Σ g x̂
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;
      const T* q = gy + (n * g.c + c) * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) {
        sg += double(q[i]);
        sgx += double(q[i]) * (double(p[i]) - mu) * s;
      }
    }
    if (dgamma) dgamma[c] += T(sgx);
    if (dbeta) dbeta[c] += T(sg);
    if (!dx) continue;
    const double k = gamma[c] * s;
    // training: dx = k (g - Σg/M - x̂ Σ(g x̂)/M) = k g - k x̂ Σ(gx̂)/M - k Σg/M ; eval: dx = k g
    const double a = training ? k * sgx / double(g.m()) * s : 0.0;   // coefficient of (x - μ)
    const double b = training ? k * sg / double(g.m()) : 0.0;
    // dx += k·g - a·(x - μ) - b  =  k·g - a·x + (a·μ - b)
    const T kt = T(k), at = T(a), c0 = T(a * mu - b);
    for (int64_t n = 0; n < g.n; ++n) {
      const T* p = x + (n * g.c + c) * g.hw;
      const T* q = gy + (n * g.c + c) * g.hw;
      T* d = dx + (n * g.c + c) * g.hw;
      for (int64_t i = 0; i < g.hw; ++i) d[i] += kt * q[i] - at * p[i] + c0;
    }
  }
}

#ifdef SPINEMARK_CUDA
// The CUDA twin (cuda/batchnorm.cu). Training saves the batch mean and 1/sqrt(var + eps) per
// channel for backward; eval keeps copies of the running statistics it used (they are (C): the
// backward must see the values of this forward even if a later training step updates them).
Var batchnorm2d_cuda(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                     bool training, const BatchNormParams& p, const BnGeom& g, int64_t h, int64_t w) {
  const char* op = "batchnorm2d";
  Tensor xc = x.value().contiguous();
  Tensor y = cuda_empty(xc.shape());  // (N, C, H, W)
  float* rm = running_mean ? cuda_f32_ptr(op, *running_mean) : nullptr;
  float* rv = running_var ? cuda_f32_ptr(op, *running_var) : nullptr;
  const float* wp = cuda_value_ptr(op, weight);
  Tensor saved_a, saved_b;  // training: mean, invstd (C); eval: running mean, running var (C)
  if (training) {
    saved_a = cuda_empty({g.c}), saved_b = cuda_empty({g.c});
    cuda::batchnorm_forward_train(g.n, g.c, h, w, cuda_f32_ptr(op, xc), wp, cuda_value_ptr(op, bias), rm, rv,
                                  p.momentum, p.eps, cuda_f32_ptr(op, y), cuda_f32_ptr(op, saved_a),
                                  cuda_f32_ptr(op, saved_b));
  } else {
    const bool backward_needed =
        grad_mode_enabled() && (x.requires_grad() || weight.requires_grad() || bias.requires_grad());
    if (backward_needed) saved_a = running_mean->clone(), saved_b = running_var->clone();  // not for inference
    cuda::batchnorm_forward_eval(g.n, g.c, h, w, cuda_f32_ptr(op, xc), wp, cuda_value_ptr(op, bias), rm, rv, p.eps,
                                 cuda_f32_ptr(op, y));
  }
  std::vector<Var> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  const double eps = p.eps;
  return var_make_result(y, inputs, op, [x, weight, bias, xc, g, h, w, training, saved_a, saved_b, eps](const Tensor& gy) {
    const char* op = "batchnorm2d";
    Tensor gc = gy.contiguous();
    float* dx = cuda_grad_ptr(op, x);
    float* dw = cuda_grad_ptr(op, weight);
    float* db = cuda_grad_ptr(op, bias);
    if (training)
      cuda::batchnorm_backward_train(g.n, g.c, h, w, cuda_f32_ptr(op, xc), cuda_value_ptr(op, weight),
                                     cuda_f32_ptr(op, saved_a), cuda_f32_ptr(op, saved_b), cuda_f32_ptr(op, gc), dx, dw, db);
    else
      cuda::batchnorm_backward_eval(g.n, g.c, h, w, cuda_f32_ptr(op, xc), cuda_value_ptr(op, weight),
                                    cuda_f32_ptr(op, saved_a), cuda_f32_ptr(op, saved_b), eps, cuda_f32_ptr(op, gc), dx,
                                    dw, db);
  });
}
#endif

}  // namespace

Var batchnorm2d(const Var& x, const Var& weight, const Var& bias, Tensor* running_mean, Tensor* running_var,
                bool training, const BatchNormParams& p) {
  const Tensor& xv = x.value();
  SM_CHECK(xv.dim() == 4, "batchnorm2d: x " << shape_str(xv.shape()) << " must be (N, C, H, W)");
#ifdef SPINEMARK_CUDA
  const bool on_gpu = xv.device() == Device::CUDA;
#else
  const bool on_gpu = false;
#endif
  if (!on_gpu) check_cpu("batchnorm2d", xv);
  const BnGeom g{xv.size(0), xv.size(1), xv.size(2) * xv.size(3)};
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
  SM_CHECK(!training || g.m() > 1, "batchnorm2d: training needs more than 1 value per channel, x is "
                                       << shape_str(xv.shape()));
#ifdef SPINEMARK_CUDA
  if (on_gpu) return batchnorm2d_cuda(x, weight, bias, running_mean, running_var, training, p, g, xv.size(2), xv.size(3));
#endif

  Tensor xc = xv.contiguous();
  std::vector<double> mean(g.c), var(g.c), invstd(g.c), gamma(g.c, 1.0), beta(g.c, 0.0);
  if (weight.defined()) gamma = weight.value().to_vector_f64();
  if (bias.defined()) beta = bias.value().to_vector_f64();
  Tensor y = Tensor::empty(xc.shape(), xc.dtype());  // (N, C, H, W)
  dispatch_float(xc.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (training) {
      channel_stats<T>(g, xc.data<T>(), mean, var);
      if (running_mean && running_var) {
        T* rm = running_mean->data<T>();
        T* rv = running_var->data<T>();
        const double unbias = double(g.m()) / double(g.m() - 1);
        for (int64_t c = 0; c < g.c; ++c) {
          rm[c] = T((1.0 - p.momentum) * double(rm[c]) + p.momentum * mean[c]);
          rv[c] = T((1.0 - p.momentum) * double(rv[c]) + p.momentum * var[c] * unbias);
        }
      }
    } else {
      const T* rm = running_mean->data<T>();
      const T* rv = running_var->data<T>();
      for (int64_t c = 0; c < g.c; ++c) mean[c] = double(rm[c]), var[c] = double(rv[c]);
    }
    std::vector<double> scale(g.c), shift(g.c);
    for (int64_t c = 0; c < g.c; ++c) {
      invstd[c] = 1.0 / std::sqrt(var[c] + p.eps);
      scale[c] = gamma[c] * invstd[c];
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    channel_affine<T>(g, xc.data<T>(), scale, shift, y.data<T>());
  });

  std::vector<Var> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  return var_make_result(
      y, inputs, "batchnorm2d",
      [x, weight, bias, xc, g, training, mean = std::move(mean), invstd = std::move(invstd),
       gamma = std::move(gamma)](const Tensor& gy) {
        Var xv = x, wv = weight, bv = bias;
        Tensor gc = gy.contiguous();
        dispatch_float(gc.dtype(), [&](auto zero) {
          using T = decltype(zero);
          T* dx = xv.requires_grad() ? xv.grad_buffer().template data<T>() : nullptr;
          T* dw = wv.defined() && wv.requires_grad() ? wv.grad_buffer().template data<T>() : nullptr;
          T* db = bv.defined() && bv.requires_grad() ? bv.grad_buffer().template data<T>() : nullptr;
          bn_backward<T>(g, training, xc.data<T>(), gc.data<T>(), mean, invstd, gamma, dx, dw, db);
        });
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
#ifdef SPINEMARK_CUDA
    if (nbt.device() == Device::CUDA) {  // += 1 on the device: no host round trip per layer
      static const Tensor one = Tensor::full({}, 1.0, DType::F32, Device::CUDA);
      tensor_add_(nbt, one);
      return y;
    }
#endif
    nbt.fill_(nbt.item() + 1.0);
  }
  return y;
}

}  // namespace sm
