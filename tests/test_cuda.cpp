// CPU-vs-CUDA parity (style.md rules 5 and 15): one table of ops; each entry runs the op on the
// CPU (the reference: the Var ops of layers/ and the optimizers of train/, in float64 where the
// op allows) and on the GPU (cuda/ops_cuda.h, on device copies of the same random float32
// inputs), forward and backward, and the driver compares every output by normalised error
// ‖gpu − cpu‖₂ / ‖cpu‖₂ against the entry's stated tolerance. GPU gradients start from random
// non-zero values that are subtracted afterwards, so a backward that assigns instead of adding
// fails. Runs in strict (no TF32) and deterministic mode. Then the layer-level dispatch: Var ops on
// CUDA tensors against the same ops on the CPU, and one full ResNet + DSNT training step (forward,
// losses, backward, Adam) on both devices. Without a GPU every case is skipped with a message; a
// CPU-only build compiles to one case that says so.
#include <doctest/doctest.h>

#ifndef SPINEMARK_CUDA

TEST_CASE("cuda: CPU-vs-GPU parity") {
  MESSAGE("SKIPPED: this spinemark was built without CUDA (configure with -DSPINEMARK_CUDA=ON on a machine with nvcc "
          "and cuDNN); no GPU test ran");
}

#else

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "cuda/backend.h"
#include "cuda/ops_cuda.h"
#include "layers/activation.h"
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/dsnt.h"
#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/linear.h"
#include "layers/pooling.h"
#include "layers/resize.h"
#include "layers/scalar_ops.h"
#include "models/dsnt_net.h"
#include "tensor/device_backend.h"
#include "tensor/rng.h"
#include "train/optimizer.h"

using namespace sm;

namespace {

// Evaluated once, at registration: every GPU case below is skipped (doctest counts it as
// skipped) when this is false; the "cuda: device" case says why.
bool gpu_usable() {
  static const bool ok = [] {
    try {
      return cuda_available();
    } catch (...) {
      return false;
    }
  }();
  return ok;
}

// Tolerances on ‖gpu − cpu‖₂ / ‖cpu‖₂ (strict float32 on the GPU vs a float64 CPU reference).
constexpr double kTolElementwise = 1e-6;  // exact float ops, one rounding
constexpr double kTolReduce = 1e-5;       // sums in a different order (softmax, DSNT, BN, pooling)
constexpr double kTolGemm = 1e-5;         // cuDNN / cuBLAS float32 (FMA) vs float64
constexpr double kTolLoss = 1e-5;         // float32 per-cell terms, double sums
constexpr double kTolOptim = 1e-6;        // same float32 formulas on both sides

struct Output {
  std::string name;
  Tensor gpu, cpu;  // both on the host
  double tol;
};

float* fp(const Tensor& t) { return static_cast<float*>(t.raw_data()); }

Tensor host_uniform(const Shape& shape, Rng& rng, double lo = -1, double hi = 1) {
  Tensor t = Tensor::empty(shape, DType::F32);
  tensor_fill_uniform(t, rng, lo, hi);
  return t;
}
Tensor to_dev(const Tensor& t) { return t.to(Device::CUDA); }
Tensor to_host(const Tensor& t) { return t.to(Device::CPU); }
Var leaf(const Tensor& f32, bool grad = true) { return Var(f32.to(DType::F64), grad); }

// A GPU gradient buffer pre-filled with random values; result() subtracts them again. `scale`
// should be about the size of the gradient: (r + g) − r in float32 loses up to |r|·2^-24 of g,
// so a prefill 42× larger than g (RMS; global average pool over 7×6) showed 9e-7 of error on an
// H100 that was the test's own, not the kernel's.
struct DevGrad {
  Tensor prefill, dev;
  DevGrad(const Shape& shape, Rng& rng, double scale = 1.0)
      : prefill(host_uniform(shape, rng, -scale, scale)), dev(to_dev(prefill)) {}
  float* ptr() const { return fp(dev); }
  Tensor result() const {
    Tensor h = to_host(dev);
    for (int64_t i = 0; i < h.numel(); ++i) h.f32()[i] -= prefill.f32()[i];
    return h;
  }
};

// Backward from `out` seeded with `seed` (the same float32 values on both sides).
void cpu_backward(const Var& out, const Tensor& seed) { backward(out, seed.to(DType::F64).reshape(out.shape())); }

double normalised_error(const Tensor& gpu, const Tensor& cpu) {
  const std::vector<double> a = gpu.to_vector_f64(), b = cpu.to_vector_f64();
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

struct OpCase {
  const char* name;
  std::function<std::vector<Output>(Rng&)> run;
};

// ---- the cases ------------------------------------------------------------------------------

std::vector<Output> case_relu(Rng& rng) {
  const Shape sh{2, 3, 5, 7};
  Tensor x = host_uniform(sh, rng), g = host_uniform(sh, rng);
  Var xv = leaf(x);
  Var y = relu(xv);
  cpu_backward(y, g);
  Tensor xd = to_dev(x), yd = Tensor::empty(sh, DType::F32, Device::CUDA), gd = to_dev(g);
  DevGrad dx(sh, rng);
  cuda::relu_forward(x.numel(), fp(xd), fp(yd));
  cuda::relu_backward(x.numel(), fp(xd), fp(gd), dx.ptr());
  return {{"y", to_host(yd), y.value(), kTolElementwise}, {"dx", dx.result(), xv.grad(), kTolElementwise}};
}

std::vector<Output> case_add_relu(Rng& rng) {
  const Shape sh{2, 4, 6, 6};
  Tensor a = host_uniform(sh, rng), b = host_uniform(sh, rng), g = host_uniform(sh, rng);
  Var av = leaf(a), bv = leaf(b);
  Var y = add_relu(av, bv);
  cpu_backward(y, g);
  Tensor ad = to_dev(a), bd = to_dev(b), gd = to_dev(g), yd = Tensor::empty(sh, DType::F32, Device::CUDA);
  DevGrad da(sh, rng), db(sh, rng);
  cuda::add_relu_forward(a.numel(), fp(ad), fp(bd), fp(yd));
  cuda::add_relu_backward(a.numel(), fp(yd), fp(gd), da.ptr(), db.ptr());
  return {{"y", to_host(yd), y.value(), kTolElementwise},
          {"da", da.result(), av.grad(), kTolElementwise},
          {"db", db.result(), bv.grad(), kTolElementwise}};
}

std::vector<Output> case_add(Rng& rng) {
  const Shape sh{3, 5, 4, 4};
  Tensor a = host_uniform(sh, rng), b = host_uniform(sh, rng), g = host_uniform(sh, rng);
  Var av = leaf(a), bv = leaf(b);
  Var y = add(av, bv);
  cpu_backward(y, g);
  Tensor ad = to_dev(a), bd = to_dev(b), gd = to_dev(g), yd = Tensor::empty(sh, DType::F32, Device::CUDA);
  DevGrad da(sh, rng), db(sh, rng);
  cuda::add_forward(a.numel(), fp(ad), fp(bd), fp(yd));
  cuda::axpy(a.numel(), 1.f, fp(gd), da.ptr());
  cuda::axpy(a.numel(), 1.f, fp(gd), db.ptr());
  return {{"y", to_host(yd), y.value(), kTolElementwise},
          {"da", da.result(), av.grad(), kTolElementwise},
          {"db", db.result(), bv.grad(), kTolElementwise}};
}

std::vector<Output> conv_case(Rng& rng, cuda::ConvShape cs, bool bias) {
  const Shape xs{cs.n, cs.c, cs.h, cs.w}, ws{cs.k, cs.c, cs.kh, cs.kw}, ys{cs.n, cs.k, cs.out_h(), cs.out_w()};
  Tensor x = host_uniform(xs, rng), w = host_uniform(ws, rng, -0.3, 0.3), b = host_uniform({cs.k}, rng);
  Tensor g = host_uniform(ys, rng);
  Var xv = leaf(x), wv = leaf(w), bv = bias ? leaf(b) : Var();
  Conv2dParams p{cs.stride_h, cs.stride_w, cs.pad_h, cs.pad_w, cs.dil_h, cs.dil_w};
  Var y = conv2d(xv, wv, bv, p);
  cpu_backward(y, g);
  Tensor xd = to_dev(x), wd = to_dev(w), bd = to_dev(b), gd = to_dev(g), yd = Tensor::empty(ys, DType::F32, Device::CUDA);
  DevGrad dx(xs, rng), dw(ws, rng), db({cs.k}, rng);
  cuda::conv2d_forward(cs, fp(xd), fp(wd), bias ? fp(bd) : nullptr, fp(yd));
  cuda::conv2d_backward(cs, fp(xd), fp(wd), fp(gd), dx.ptr(), dw.ptr(), bias ? db.ptr() : nullptr);
  std::vector<Output> out{{"y", to_host(yd), y.value(), kTolGemm},
                          {"dx", dx.result(), xv.grad(), kTolGemm},
                          {"dw", dw.result(), wv.grad(), kTolGemm}};
  if (bias) out.push_back({"db", db.result(), bv.grad(), kTolReduce});
  return out;
}

cuda::ConvShape conv_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t kernel, int64_t stride,
                           int64_t pad) {
  cuda::ConvShape cs;
  cs.n = n, cs.c = c, cs.h = h, cs.w = w, cs.k = k, cs.kh = kernel, cs.kw = kernel;
  cs.stride_h = cs.stride_w = stride;
  cs.pad_h = cs.pad_w = pad;
  return cs;
}

std::vector<Output> batchnorm_case(Rng& rng, bool training) {
  const int64_t n = 4, c = 3, h = 5, w = 6;
  const Shape xs{n, c, h, w};
  Tensor x = host_uniform(xs, rng, -2, 3), g = host_uniform(xs, rng);
  Tensor gamma = host_uniform({c}, rng, 0.5, 1.5), beta = host_uniform({c}, rng);
  Tensor rm = host_uniform({c}, rng), rv = host_uniform({c}, rng, 0.5, 2.0);
  Var xv = leaf(x), gv = leaf(gamma), bv = leaf(beta);
  Tensor rm64 = rm.to(DType::F64).clone(), rv64 = rv.to(DType::F64).clone();
  BatchNormParams bp;
  Var y = batchnorm2d(xv, gv, bv, &rm64, &rv64, training, bp);
  cpu_backward(y, g);
  Tensor xd = to_dev(x), gd = to_dev(g), gad = to_dev(gamma), bed = to_dev(beta), rmd = to_dev(rm), rvd = to_dev(rv);
  Tensor yd = Tensor::empty(xs, DType::F32, Device::CUDA);
  Tensor mean = Tensor::empty({c}, DType::F32, Device::CUDA), invstd = Tensor::empty({c}, DType::F32, Device::CUDA);
  DevGrad dx(xs, rng), dgamma({c}, rng), dbeta({c}, rng);
  if (training) {
    cuda::batchnorm_forward_train(n, c, h, w, fp(xd), fp(gad), fp(bed), fp(rmd), fp(rvd), bp.momentum, bp.eps, fp(yd),
                                  fp(mean), fp(invstd));
    cuda::batchnorm_backward_train(n, c, h, w, fp(xd), fp(gad), fp(mean), fp(invstd), fp(gd), dx.ptr(), dgamma.ptr(),
                                   dbeta.ptr());
  } else {
    cuda::batchnorm_forward_eval(n, c, h, w, fp(xd), fp(gad), fp(bed), fp(rmd), fp(rvd), bp.eps, fp(yd));
    cuda::batchnorm_backward_eval(n, c, h, w, fp(xd), fp(gad), fp(rmd), fp(rvd), bp.eps, fp(gd), dx.ptr(), dgamma.ptr(),
                                  dbeta.ptr());
  }
  return {{"y", to_host(yd), y.value(), kTolReduce},
          {"running_mean", to_host(rmd), rm64, kTolReduce},
          {"running_var", to_host(rvd), rv64, kTolReduce},
          {"dx", dx.result(), xv.grad(), kTolReduce},
          {"dweight", dgamma.result(), gv.grad(), kTolReduce},
          {"dbias", dbeta.result(), bv.grad(), kTolReduce}};
}

std::vector<Output> max_pool_case(Rng& rng, int64_t k, int64_t s, int64_t pad) {
  cuda::PoolShape ps;
  ps.n = 2, ps.c = 3, ps.h = 9, ps.w = 8, ps.kernel = k, ps.stride = s, ps.pad = pad;
  const Shape xs{ps.n, ps.c, ps.h, ps.w}, ys{ps.n, ps.c, ps.out_h(), ps.out_w()};
  Tensor x = host_uniform(xs, rng), g = host_uniform(ys, rng);
  Var xv = leaf(x);
  Var y = max_pool2d(xv, MaxPool2dParams{k, s, pad});
  cpu_backward(y, g);
  Tensor xd = to_dev(x), gd = to_dev(g), yd = Tensor::empty(ys, DType::F32, Device::CUDA);
  cuda::DeviceBuffer argmax(size_t(y.value().numel()) * sizeof(int32_t));
  DevGrad dx(xs, rng);
  cuda::max_pool2d_forward(ps, fp(xd), fp(yd), argmax.as<int32_t>());
  cuda::max_pool2d_backward(ps, argmax.as<int32_t>(), fp(gd), dx.ptr());
  return {{"y", to_host(yd), y.value(), kTolElementwise}, {"dx", dx.result(), xv.grad(), kTolElementwise}};
}

std::vector<Output> case_global_avg_pool(Rng& rng) {
  const Shape xs{3, 5, 7, 6};
  Tensor x = host_uniform(xs, rng), g = host_uniform({3, 5}, rng);
  Var xv = leaf(x);
  Var y = global_avg_pool(xv);
  cpu_backward(y, g);
  Tensor xd = to_dev(x), gd = to_dev(g), yd = Tensor::empty({3, 5}, DType::F32, Device::CUDA);
  DevGrad dx(xs, rng, 1.0 / 42);  // dx = g / (7·6)
  cuda::global_avg_pool_forward(3, 5, 7, 6, fp(xd), fp(yd));
  cuda::global_avg_pool_backward(3, 5, 7, 6, fp(gd), dx.ptr());
  return {{"y", to_host(yd), y.value(), kTolReduce}, {"dx", dx.result(), xv.grad(), kTolElementwise}};
}

std::vector<Output> case_linear(Rng& rng) {
  const int64_t n = 5, in = 37, out = 11;
  Tensor x = host_uniform({n, in}, rng), w = host_uniform({out, in}, rng), b = host_uniform({out}, rng);
  Tensor g = host_uniform({n, out}, rng);
  Var xv = leaf(x), wv = leaf(w), bv = leaf(b);
  Var y = linear(xv, wv, bv);
  cpu_backward(y, g);
  Tensor xd = to_dev(x), wd = to_dev(w), bd = to_dev(b), gd = to_dev(g), yd = Tensor::empty({n, out}, DType::F32, Device::CUDA);
  DevGrad dx({n, in}, rng), dw({out, in}, rng), db({out}, rng);
  cuda::linear_forward(n, in, out, fp(xd), fp(wd), fp(bd), fp(yd));
  cuda::linear_backward(n, in, out, fp(xd), fp(wd), fp(gd), dx.ptr(), dw.ptr(), db.ptr());
  return {{"y", to_host(yd), y.value(), kTolGemm},
          {"dx", dx.result(), xv.grad(), kTolGemm},
          {"dw", dw.result(), wv.grad(), kTolGemm},
          {"db", db.result(), bv.grad(), kTolReduce}};
}

std::vector<Output> resize_case(Rng& rng, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  const Shape xs{2, 3, h, w}, ys{2, 3, oh, ow};
  Tensor x = host_uniform(xs, rng), g = host_uniform(ys, rng);
  Var xv = leaf(x);
  Var y = resize_bilinear(xv, oh, ow);
  cpu_backward(y, g);
  Tensor xd = to_dev(x), gd = to_dev(g), yd = Tensor::empty(ys, DType::F32, Device::CUDA);
  DevGrad dx(xs, rng);
  cuda::resize_bilinear_forward(2, 3, h, w, oh, ow, fp(xd), fp(yd));
  cuda::resize_bilinear_backward(2, 3, h, w, oh, ow, fp(gd), dx.ptr());
  return {{"y", to_host(yd), y.value(), kTolReduce}, {"dx", dx.result(), xv.grad(), kTolReduce}};
}

std::vector<Output> case_flat_softmax(Rng& rng) {
  const Shape sh{2, 3, 8, 8};
  Tensor z = host_uniform(sh, rng, -4, 4), g = host_uniform(sh, rng);
  Var zv = leaf(z);
  Var p = flat_softmax(zv);
  cpu_backward(p, g);
  Tensor zd = to_dev(z), gd = to_dev(g), pd = Tensor::empty(sh, DType::F32, Device::CUDA);
  DevGrad dz(sh, rng);
  cuda::flat_softmax_forward(6, 8, 8, fp(zd), fp(pd));
  cuda::flat_softmax_backward(6, 8, 8, fp(pd), fp(gd), dz.ptr());
  return {{"p", to_host(pd), p.value(), kTolReduce}, {"dz", dz.result(), zv.grad(), kTolReduce}};
}

// Probability maps (each channel sums to 1) from random logits.
Tensor heatmaps_random(const Shape& sh, Rng& rng) {
  Var p = flat_softmax(Var(host_uniform(sh, rng, -3, 3)));
  return p.value();
}

std::vector<Output> case_dsnt(Rng& rng) {
  const Shape sh{2, 3, 6, 9};
  Tensor p = heatmaps_random(sh, rng), g = host_uniform({2, 3, 2}, rng);
  Var pv = leaf(p);
  Var mu = dsnt(pv);
  cpu_backward(mu, g);
  Tensor pd = to_dev(p), gd = to_dev(g), mud = Tensor::empty({2, 3, 2}, DType::F32, Device::CUDA);
  DevGrad dp(sh, rng);
  cuda::dsnt_forward(6, 6, 9, fp(pd), fp(mud));
  cuda::dsnt_backward(6, 6, 9, fp(gd), dp.ptr());
  return {{"mu", to_host(mud), mu.value(), kTolReduce}, {"dp", dp.result(), pv.grad(), kTolElementwise}};
}

std::vector<Output> case_gaussian(Rng& rng) {
  Tensor c = host_uniform({2, 4, 2}, rng, -1.2, 1.2);
  Tensor q = gaussian_heatmaps(c.to(DType::F64), 7, 10, 1.3);
  Tensor cd = to_dev(c), qd = Tensor::empty({2, 4, 7, 10}, DType::F32, Device::CUDA);
  cuda::gaussian_heatmaps(8, 7, 10, fp(cd), 1.3, fp(qd));
  return {{"q", to_host(qd), q, kTolLoss}};
}

Tensor mask_random(int64_t n, int64_t c, Rng& rng) {
  Tensor m = Tensor::empty({n, c}, DType::F32);
  for (int64_t i = 0; i < m.numel(); ++i) m.f32()[i] = i == 0 ? 1.f : (rng.bernoulli(0.7) ? 1.f : 0.f);
  return m;
}

std::vector<Output> case_euclidean(Rng& rng) {
  const int64_t n = 3, c = 4;
  Tensor mu = host_uniform({n, c, 2}, rng), t = host_uniform({n, c, 2}, rng), mask = mask_random(n, c, rng);
  mu.f32()[2] = t.f32()[2], mu.f32()[3] = t.f32()[3];  // one zero distance: gradient 0 there
  const float gl = 0.7f;
  Var mv = leaf(mu);
  Var loss = euclidean_loss(mv, t.to(DType::F64), mask.to(DType::F64));
  cpu_backward(loss, Tensor::scalar(gl));
  Tensor mud = to_dev(mu), td = to_dev(t), maskd = to_dev(mask), ld = Tensor::empty({}, DType::F32, Device::CUDA);
  Tensor gd = to_dev(Tensor::scalar(gl));
  DevGrad dmu({n, c, 2}, rng);
  cuda::euclidean_loss_forward(n * c, fp(mud), fp(td), fp(maskd), fp(ld));
  cuda::euclidean_loss_backward(n * c, fp(mud), fp(td), fp(maskd), fp(gd), dmu.ptr());
  return {{"loss", to_host(ld), loss.value(), kTolLoss}, {"dmu", dmu.result(), mv.grad(), kTolLoss}};
}

enum class Reg { JS, KL, Variance };

std::vector<Output> regulariser_case(Rng& rng, Reg kind) {
  const int64_t n = 2, c = 3, h = 8, w = 8;
  const double sigma = 1.0;
  const Shape sh{n, c, h, w};
  Tensor p = heatmaps_random(sh, rng), t = host_uniform({n, c, 2}, rng, -0.8, 0.8), mask = mask_random(n, c, rng);
  const float gl = 1.3f;
  Var pv = leaf(p);
  Var loss = kind == Reg::JS   ? js_regularizer(pv, t.to(DType::F64), sigma, mask.to(DType::F64))
             : kind == Reg::KL ? kl_regularizer(pv, t.to(DType::F64), sigma, mask.to(DType::F64))
                               : variance_regularizer(pv, sigma, mask.to(DType::F64));
  cpu_backward(loss, Tensor::scalar(gl));
  Tensor pd = to_dev(p), td = to_dev(t), maskd = to_dev(mask), gd = to_dev(Tensor::scalar(gl));
  Tensor qd = Tensor::empty(sh, DType::F32, Device::CUDA), ld = Tensor::empty({}, DType::F32, Device::CUDA);
  DevGrad dp(sh, rng);
  cuda::gaussian_heatmaps(n * c, h, w, fp(td), sigma, fp(qd));
  if (kind == Reg::JS) {
    cuda::js_forward(n * c, h, w, fp(pd), fp(qd), fp(maskd), fp(ld));
    cuda::js_backward(n * c, h, w, fp(pd), fp(qd), fp(maskd), fp(gd), dp.ptr());
  } else if (kind == Reg::KL) {
    cuda::kl_forward(n * c, h, w, fp(pd), fp(qd), fp(maskd), fp(ld));
    cuda::kl_backward(n * c, h, w, fp(pd), fp(qd), fp(maskd), fp(gd), dp.ptr());
  } else {
    cuda::variance_forward(n * c, h, w, fp(pd), sigma, fp(maskd), fp(ld));
    cuda::variance_backward(n * c, h, w, fp(pd), sigma, fp(maskd), fp(gd), dp.ptr());
  }
  return {{"loss", to_host(ld), loss.value(), kTolLoss}, {"dp", dp.result(), pv.grad(), kTolLoss}};
}

// Three steps of a CPU optimizer (float32, one parameter) and of the fused GPU step on the
// same values and gradients; compares the parameters and the moment buffers.
enum class Opt { Sgd, Adam, AdamW, Rmsprop };

std::vector<Output> optimizer_case(Rng& rng, Opt kind) {
  const int64_t n = 1000;
  Tensor p0 = host_uniform({n}, rng);
  std::vector<Tensor> grads;
  for (int i = 0; i < 3; ++i) grads.push_back(host_uniform({n}, rng));
  Var param(p0.clone(), true, "w");
  ParameterBuffer buf(std::vector<NamedVar>{{"w", param}});
  std::unique_ptr<Optimizer> opt;
  SgdConfig sc;
  sc.lr = 0.05, sc.momentum = 0.9, sc.weight_decay = 1e-2, sc.nesterov = true;
  AdamConfig ac;
  ac.lr = 1e-2, ac.weight_decay = 1e-2;
  RmspropConfig rc;
  rc.lr = 1e-2, rc.momentum = 0.5, rc.centered = true, rc.weight_decay = 1e-3;
  if (kind == Opt::Sgd) opt = std::make_unique<Sgd>(buf, sc);
  if (kind == Opt::Adam) opt = std::make_unique<Adam>(buf, ac);
  if (kind == Opt::AdamW) opt = std::make_unique<AdamW>(buf, ac);
  if (kind == Opt::Rmsprop) opt = std::make_unique<Rmsprop>(buf, rc);
  Tensor pd = to_dev(p0), m1 = Tensor::zeros({n}, DType::F32, Device::CUDA), m2 = Tensor::zeros({n}, DType::F32, Device::CUDA);
  Tensor m3 = Tensor::zeros({n}, DType::F32, Device::CUDA);
  for (int step = 1; step <= 3; ++step) {
    buf.groups()[0].grads.copy_(grads[size_t(step - 1)]);
    opt->step();
    Tensor gd = to_dev(grads[size_t(step - 1)]);
    if (kind == Opt::Sgd)
      cuda::sgd_step(n, fp(pd), fp(gd), fp(m1), sc.lr, sc.momentum, sc.dampening, sc.weight_decay, sc.nesterov, step);
    else if (kind == Opt::Rmsprop)
      cuda::rmsprop_step(n, fp(pd), fp(gd), fp(m1), fp(m2), fp(m3), rc.lr, rc.alpha, rc.eps, rc.weight_decay,
                         rc.momentum, rc.centered);
    else
      cuda::adam_step(n, fp(pd), fp(gd), fp(m1), fp(m2), ac.lr, ac.beta1, ac.beta2, ac.eps, ac.weight_decay,
                      kind == Opt::AdamW, step);
  }
  std::vector<Output> out{{"param", to_host(pd), buf.groups()[0].values, kTolOptim}};
  std::vector<NamedTensor> state = opt->state_named();
  // Moments in the CPU's registration order: sgd buf; adam m, v; rmsprop square_avg, buf, grad_avg.
  std::vector<Tensor> gpu_moments{m1, m2, m3};
  size_t mi = 0;
  for (const NamedTensor& nt : state) {
    if (nt.first.find(".step") != std::string::npos) continue;
    REQUIRE(mi < gpu_moments.size());
    out.push_back({nt.first, to_host(gpu_moments[mi++]), nt.second, kTolOptim});
  }
  return out;
}

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table{
      {"relu", case_relu},
      {"add", case_add},
      {"add_relu", case_add_relu},
      {"conv3x3 s1 p1 +bias", [](Rng& r) { return conv_case(r, conv_shape(2, 5, 9, 8, 7, 3, 1, 1), true); }},
      {"conv7x7 s2 p3 (stem)", [](Rng& r) { return conv_case(r, conv_shape(2, 1, 20, 18, 8, 7, 2, 3), false); }},
      {"conv1x1 s2 (projection)", [](Rng& r) { return conv_case(r, conv_shape(2, 6, 8, 8, 12, 1, 2, 0), false); }},
      {"conv3x3 s2 p1", [](Rng& r) { return conv_case(r, conv_shape(3, 4, 11, 10, 6, 3, 2, 1), false); }},
      {"batchnorm train", [](Rng& r) { return batchnorm_case(r, true); }},
      {"batchnorm eval", [](Rng& r) { return batchnorm_case(r, false); }},
      {"max_pool 3x3 s2 p1", [](Rng& r) { return max_pool_case(r, 3, 2, 1); }},
      {"max_pool 2x2 s2", [](Rng& r) { return max_pool_case(r, 2, 2, 0); }},
      {"global_avg_pool", case_global_avg_pool},
      {"linear", case_linear},
      {"resize up 5x7->9x12", [](Rng& r) { return resize_case(r, 5, 7, 9, 12); }},
      {"resize down 8x8->3x5", [](Rng& r) { return resize_case(r, 8, 8, 3, 5); }},
      {"flat_softmax", case_flat_softmax},
      {"dsnt", case_dsnt},
      {"gaussian_heatmaps", case_gaussian},
      {"euclidean_loss", case_euclidean},
      {"js_regularizer", [](Rng& r) { return regulariser_case(r, Reg::JS); }},
      {"kl_regularizer", [](Rng& r) { return regulariser_case(r, Reg::KL); }},
      {"variance_regularizer", [](Rng& r) { return regulariser_case(r, Reg::Variance); }},
      {"sgd (momentum, nesterov, wd)", [](Rng& r) { return optimizer_case(r, Opt::Sgd); }},
      {"adam (wd)", [](Rng& r) { return optimizer_case(r, Opt::Adam); }},
      {"adamw", [](Rng& r) { return optimizer_case(r, Opt::AdamW); }},
      {"rmsprop (centered, momentum)", [](Rng& r) { return optimizer_case(r, Opt::Rmsprop); }},
  };
  return table;
}

// Puts the GPU in the tests' mode (strict float32, deterministic) for one scope.
struct ModeGuard {
  bool strict = cuda::strict_mode(), det = cuda::deterministic_mode();
  ModeGuard(bool s, bool d) { cuda::strict_mode_set(s), cuda::deterministic_mode_set(d); }
  ~ModeGuard() { cuda::strict_mode_set(strict), cuda::deterministic_mode_set(det); }
};

// Runs the whole table; prints one line per op with its worst output (error / tolerance), so a
// GPU run shows how much room each stated tolerance leaves.
void table_run(bool strict, double tol_scale) {
  ModeGuard mode(strict, true);
  uint64_t seed = 1;
  std::ostringstream report;
  report << (strict ? "strict float32" : "default (TF32)") << " parity, worst output of each op:\n";
  for (const OpCase& op : op_table()) {
    Rng rng(seed++);
    std::vector<Output> outs = op.run(rng);
    cuda::backend_get().synchronize();
    double worst_ratio = -1, worst_err = 0, worst_tol = 0;
    std::string worst_name;
    for (const Output& o : outs) {
      REQUIRE_MESSAGE(o.cpu.defined(), op.name << "/" << o.name << ": the CPU produced no value");
      const double err = normalised_error(o.gpu, o.cpu);
      const double tol = o.tol * tol_scale;
      INFO(op.name << " / " << o.name << ": normalised error " << err << " (tolerance " << tol << ")");
      CHECK(err <= tol);
      if (!(err / tol <= worst_ratio)) worst_ratio = err / tol, worst_err = err, worst_tol = tol, worst_name = o.name;
    }
    char line[200];
    std::snprintf(line, sizeof line, "  %-22s %-14s error %9.2e  tolerance %8.1e  (%5.3f of it)\n", op.name,
                  worst_name.c_str(), worst_err, worst_tol, worst_ratio);
    report << line;
  }
  MESSAGE(report.str());
}

}  // namespace

TEST_CASE("cuda: device") {
  if (!gpu_usable()) {
    MESSAGE("SKIPPED: " << cuda::device_describe() << "; every CPU-vs-GPU case of this program is skipped");
    return;
  }
  MESSAGE("CUDA device: " << cuda::device_describe() << ", TF32 " << std::string(cuda::tf32_active() ? "available" : "off"));
}

TEST_CASE("cuda: CPU-vs-GPU parity, every op, strict float32" * doctest::skip(!gpu_usable())) {
  table_run(true, 1.0);
  MESSAGE(cuda::memory_describe());
}

// Default mode (TF32 convolution and GEMM on Ampere+): same table, looser stated tolerance.
TEST_CASE("cuda: CPU-vs-GPU parity, default TF32 mode" * doctest::skip(!gpu_usable())) {
  table_run(false, cuda::tf32_active() ? 500.0 : 1.0);  // TF32: 10 mantissa bits, ~5e-3 relative
}

TEST_CASE("cuda: known values of method.md §4 on the GPU" * doctest::skip(!gpu_usable())) {
  // Flat softmax of [[10, 1], [5, 2]].
  Tensor z = Tensor::from_vector({1, 1, 2, 2}, std::vector<float>{10, 1, 5, 2}).to(Device::CUDA);
  Tensor p = Tensor::empty({1, 1, 2, 2}, DType::F32, Device::CUDA);
  cuda::flat_softmax_forward(1, 2, 2, fp(z), fp(p));
  const std::vector<float> pv = to_host(p).to_vector_f32();
  const float expect[4] = {0.99285460f, 0.00012253f, 0.00668980f, 0.00033307f};
  for (int i = 0; i < 4; ++i) CHECK(pv[size_t(i)] == doctest::Approx(expect[i]).epsilon(1e-5));
  // DSNT of the 5×5 map: (0.4, 0.0).
  std::vector<float> m(25, 0.f);
  m[2 * 5 + 3] = 0.6f, m[1 * 5 + 3] = m[2 * 5 + 2] = m[2 * 5 + 4] = m[3 * 5 + 3] = 0.1f;
  Tensor md = Tensor::from_vector({1, 1, 5, 5}, m).to(Device::CUDA), mu = Tensor::empty({1, 1, 2}, DType::F32, Device::CUDA);
  cuda::dsnt_forward(1, 5, 5, fp(md), fp(mu));
  const std::vector<float> muv = to_host(mu).to_vector_f32();
  CHECK(muv[0] == doctest::Approx(0.4).epsilon(1e-6));
  CHECK(std::fabs(muv[1]) < 1e-6);
}

TEST_CASE("cuda: deterministic mode gives bit-identical results" * doctest::skip(!gpu_usable())) {
  ModeGuard mode(false, true);
  Rng rng(7);
  const cuda::ConvShape cs = conv_shape(4, 16, 17, 15, 32, 3, 1, 1);
  Tensor x = to_dev(host_uniform({4, 16, 17, 15}, rng)), w = to_dev(host_uniform({32, 16, 3, 3}, rng));
  Tensor g = to_dev(host_uniform({4, 32, 17, 15}, rng));
  std::vector<std::vector<float>> runs;
  for (int r = 0; r < 2; ++r) {
    Tensor dx = Tensor::zeros({4, 16, 17, 15}, DType::F32, Device::CUDA), dw = Tensor::zeros({32, 16, 3, 3}, DType::F32, Device::CUDA);
    Tensor db = Tensor::zeros({32}, DType::F32, Device::CUDA);
    cuda::conv2d_backward(cs, fp(x), fp(w), fp(g), fp(dx), fp(dw), fp(db));
    std::vector<float> all = to_host(dx).to_vector_f32();
    for (float v : to_host(dw).to_vector_f32()) all.push_back(v);
    for (float v : to_host(db).to_vector_f32()) all.push_back(v);
    runs.push_back(all);
  }
  CHECK(runs[0] == runs[1]);
  CHECK(cuda::sum_squares(x.numel(), fp(x)) == cuda::sum_squares(x.numel(), fp(x)));
}

// The default mode is TF32 for convolution (Ampere and newer): at a size where tensor cores pay,
// cuDNN's measured choice (deterministic off, as the benchmark) should take them, and the error
// must stay inside the TF32 tolerance; strict mode must stay float32-exact at the same shape.
// The table's tiny shapes get FMA kernels even in default mode, so this case is the TF32 check.
TEST_CASE("cuda: convolution in default (TF32) and strict mode at a network-sized shape" * doctest::skip(!gpu_usable())) {
  Rng rng(11);
  const cuda::ConvShape cs = conv_shape(8, 64, 32, 32, 64, 3, 1, 1);
  const Shape xs{8, 64, 32, 32}, ws{64, 64, 3, 3}, ys{8, 64, 32, 32};
  Tensor x = host_uniform(xs, rng), w = host_uniform(ws, rng, -0.05, 0.05), g = host_uniform(ys, rng);
  Var xv = leaf(x), wv = leaf(w);
  Var y = conv2d(xv, wv, Var(), Conv2dParams::make(1, 1));
  cpu_backward(y, g);
  Tensor xd = to_dev(x), wd = to_dev(w), gd = to_dev(g);
  for (bool strict : {true, false}) {
    ModeGuard mode(strict, false);
    Tensor yd = Tensor::empty(ys, DType::F32, Device::CUDA);
    Tensor dx = Tensor::zeros(xs, DType::F32, Device::CUDA), dw = Tensor::zeros(ws, DType::F32, Device::CUDA);
    cuda::conv2d_forward(cs, fp(xd), fp(wd), nullptr, fp(yd));
    cuda::conv2d_backward(cs, fp(xd), fp(wd), fp(gd), fp(dx), fp(dw), nullptr);
    const double ey = normalised_error(to_host(yd), y.value()), edx = normalised_error(to_host(dx), xv.grad()),
                 edw = normalised_error(to_host(dw), wv.grad());
    const cuda::ConvAlgoChoice c = cuda::conv_algo_chosen(cs);
    MESSAGE(std::string(strict ? "strict" : "default (TF32)") << " conv 8x64x32x32, 3x3: errors y " << ey << ", dx " << edx
                                                   << ", dw " << edw << "; algorithms fwd " << c.fwd << " (" << std::string(c.fwd_math)
                                                   << "), bwd-data " << c.bwd_data << " (" << std::string(c.bwd_data_math)
                                                   << "), bwd-filter " << c.bwd_filter << " (" << std::string(c.bwd_filter_math) << ")");
    // Strict mode here may get Winograd or FFT (measured choice): float32 still, but with a few
    // times the rounding of a direct GEMM over 576-term sums, hence 1e-4 rather than the table's 1e-5.
    const double tol = strict ? 1e-4 : kTolGemm * 500;
    CHECK(ey <= tol);
    CHECK(edx <= tol);
    CHECK(edw <= tol);
    if (strict) CHECK(std::string(c.fwd_math) == "fma");
    // The check that TF32 is really in use: with CUDNN_DEFAULT_MATH all three directions came back
    // "default" and ran FMA kernels; chosen under tensor-op math they came back "tensor_op".
    if (!strict && cuda::tf32_active())
      CHECK_MESSAGE((std::string(c.fwd_math) == "tensor_op" || std::string(c.bwd_data_math) == "tensor_op" ||
                     std::string(c.bwd_filter_math) == "tensor_op"),
                    "default mode on a TF32 GPU chose no tensor-core convolution algorithm");
  }
}

TEST_CASE("cuda: allocator caches, reuses and reports" * doctest::skip(!gpu_usable())) {
  const cuda::MemoryStats before = cuda::memory_stats();
  { cuda::DeviceBuffer a(12345); }
  { cuda::DeviceBuffer b(12345); }  // same bucket: served from the cache
  const cuda::MemoryStats after = cuda::memory_stats();
  CHECK(after.cache_hits >= before.cache_hits + 1);
  CHECK(after.in_use == before.in_use);
  // An impossible request fails with a message naming the bytes, not a crash.
  CHECK_THROWS_WITH_AS(cuda::DeviceBuffer(size_t(1) << 50), doctest::Contains("out of memory"), sm::Error);
}

// ---- layer-level dispatch: the Var ops on CUDA tensors ------------------------------------------

namespace {

// Runs f on a CPU float64 leaf and on a CUDA float32 leaf holding the same values, backpropagates
// the same random seed, and compares the outputs and the input gradients.
void var_op_compare(const char* name, const Shape& in_shape, const std::function<Var(const Var&)>& f, double tol,
                    uint64_t seed) {
  Rng rng(seed);
  Tensor x = host_uniform(in_shape, rng);
  Var xc = leaf(x), xg(to_dev(x), true);
  Var yc = f(xc), yg = f(xg);
  REQUIRE_MESSAGE(yg.value().device() == Device::CUDA, name << ": the output left the GPU");
  Tensor g = host_uniform(yc.shape(), rng);
  cpu_backward(yc, g);
  backward(yg, to_dev(g.reshape(yg.shape())));
  const double ey = normalised_error(to_host(yg.value()), yc.value());
  const double ex = normalised_error(to_host(xg.grad()), xc.grad());
  INFO(name << ": output error " << ey << ", input-gradient error " << ex << " (tolerance " << tol << ")");
  CHECK(ey <= tol);
  CHECK(ex <= tol);
}

}  // namespace

TEST_CASE("cuda: Var ops dispatch to the GPU, forward and backward" * doctest::skip(!gpu_usable())) {
  ModeGuard mode(true, true);
  Rng rng(21);
  const Tensor w = host_uniform({7, 30}, rng), b = host_uniform({7}, rng);
  const Tensor t = host_uniform({2, 3, 2}, rng, -0.8, 0.8);
  const Tensor mask = Tensor::from_vector({2, 3}, std::vector<float>{1, 1, 0, 1, 0, 1});
  // Weights follow the input's device and dtype (the CPU reference runs in float64).
  auto like = [](const Tensor& v, const Var& x) {
    return x.value().device() == Device::CUDA ? Var(to_dev(v)) : Var(v.to(DType::F64));
  };
  var_op_compare("linear", {5, 30}, [&](const Var& x) { return linear(x, like(w, x), like(b, x)); }, kTolGemm, 1);
  var_op_compare("global_avg_pool", {2, 3, 5, 6}, [](const Var& x) { return global_avg_pool(x); }, kTolReduce, 2);
  var_op_compare("resize_bilinear", {2, 3, 5, 7}, [](const Var& x) { return resize_bilinear(x, 9, 4); }, kTolReduce, 3);
  var_op_compare("max_pool2d", {2, 3, 9, 8}, [](const Var& x) { return max_pool2d(x, MaxPool2dParams{3, 2, 1}); },
                 kTolElementwise, 4);
  var_op_compare("add_relu + add + scale + reshape", {2, 3, 4, 4},
                 [](const Var& x) { return reshape(scale(add(add_relu(x, relu(x)), x), 0.5), {2, 48}); }, kTolElementwise, 5);
  var_op_compare("kl_regularizer(flat_softmax)", {2, 3, 6, 7},
                 [&](const Var& x) {
                   const Tensor tt = x.value().device() == Device::CUDA ? to_dev(t) : t.to(DType::F64);
                   return kl_regularizer(flat_softmax(x), tt, 1.0, mask);
                 },
                 kTolLoss, 6);
  var_op_compare("variance_regularizer(flat_softmax)", {2, 3, 6, 7},
                 [&](const Var& x) { return variance_regularizer(flat_softmax(x), 1.2, mask); }, kTolLoss, 7);
  // MSE/L1 stay CPU-only: a CUDA tensor fails with a message, not silently.
  Var a(to_dev(t), true);
  CHECK_THROWS_WITH_AS(mse_loss(a, t), doctest::Contains("no CUDA version"), sm::Error);
  // heatmap_spread copies the maps to the host; gaussian_heatmaps stays on the device.
  Tensor p = flat_softmax(Var(to_dev(host_uniform({2, 3, 6, 7}, rng)))).value();
  CHECK(normalised_error(heatmap_spread(p), heatmap_spread(to_host(p))) <= kTolElementwise);
  Tensor q = gaussian_heatmaps(to_dev(t), 6, 7, 1.0);
  CHECK(q.device() == Device::CUDA);
  CHECK(normalised_error(to_host(q), gaussian_heatmaps(t.to(DType::F64), 6, 7, 1.0)) <= kTolLoss);
}

// ---- one full training step of a ResNet + DSNT network --------------------------------------

namespace {

// Tolerances (normalised L2 error, GPU strict float32 vs the CPU in float64) for a whole network:
// errors compound through ~20 layers and BN's backward subtracts nearly equal terms.
constexpr double kTolNetForward = 1e-4;  // loss, coordinates, heatmaps, eval outputs
constexpr double kTolNetGrad = 1e-3;     // every parameter gradient, the input gradient, Adam's m
// Adam's first step is ≈ −lr·sign(g): a gradient at rounding level can flip its sign.
constexpr double kTolNetStep = 1e-4;     // weights after the step, BN running statistics

struct StepRecord {
  std::vector<NamedTensor> tensors;  // host copies, in a fixed order
  void add(const std::string& name, const Tensor& t) { tensors.push_back({name, t.to(Device::CPU).clone()}); }
};

// The golden fixture's architecture, with a dilated last stage (output stride 8 of 16).
DsntNetConfig small_net_config() {
  DsntNetConfig nc;
  nc.backbone.depth = 0;
  nc.backbone.block = BlockType::Basic;
  nc.backbone.blocks = {1, 2, 1, 1};
  nc.backbone.widths = {8, 16, 16, 24};
  nc.backbone.stem_width = 8;
  nc.backbone.in_channels = 1;
  nc.backbone.output_stride = 8;
  nc.landmarks = 3;
  return nc;
}

// Same initial weights (Rng 11) on both devices; the CPU runs in float64. One Adam step of
// Euclidean + 0.5 JS + 0.01 variance with a mask, then an eval-mode forward without gradients.
StepRecord train_step_record(Device dev, const Tensor& input, const Tensor& target, const Tensor& mask) {
  const DType dt = dev == Device::CUDA ? DType::F32 : DType::F64;
  Rng rng(11);
  DsntNet net(small_net_config(), rng);
  net.to_dtype(dt);
  net.to_device(dev);
  net.train();
  ParameterBuffer params(net);
  AdamConfig ac;
  ac.lr = 1e-3, ac.weight_decay = 1e-4;
  Adam adam(params, ac);
  adam.zero_grad();
  auto on = [&](const Tensor& t) { return t.to(dt).to(dev); };
  Var x(on(input), true, "input");
  DsntOutput out = net.forward_all(x);
  Var loss = add(add(euclidean_loss(out.coords, on(target), on(mask)),
                     scale(js_regularizer(out.heatmaps, on(target), 1.0, on(mask)), 0.5)),
                 scale(variance_regularizer(out.heatmaps, 1.0, on(mask)), 0.01));
  backward(loss);
  StepRecord r;
  r.add("loss", loss.value());
  r.add("coords", out.coords.value());
  r.add("heatmaps", out.heatmaps.value());
  r.add("grad input", x.grad());
  r.add("grad norm", Tensor::scalar(grad_norm(params), DType::F64));
  for (const NamedTensor& g : params.named_grads()) r.add("grad " + g.first, g.second);
  adam.step();
  for (const NamedTensor& v : params.named_values()) r.add("after " + v.first, v.second);
  for (const auto& [name, b] : net.named_buffers()) r.add("after " + name, b.value());
  for (const NamedTensor& m : adam.state_named())
    if (m.first.find("exp_avg.") != std::string::npos) r.add(m.first, m.second);
  NoGradGuard ng;
  net.eval();
  DsntOutput ev = net.forward_all(Var(on(input)));
  r.add("eval coords", ev.coords.value());
  r.add("eval heatmaps", ev.heatmaps.value());
  return r;
}

double step_tolerance(const std::string& name) {
  if (name.rfind("grad", 0) == 0 || name.find("exp_avg.") != std::string::npos) return kTolNetGrad;
  if (name.rfind("after", 0) == 0) return kTolNetStep;
  return kTolNetForward;
}

}  // namespace

TEST_CASE("cuda: one ResNet + DSNT training step (forward, losses, backward, Adam) matches the CPU" *
          doctest::skip(!gpu_usable())) {
  ModeGuard mode(true, true);
  Rng rng(5);
  const Tensor input = host_uniform({2, 1, 64, 48}, rng);
  const Tensor target = host_uniform({2, 3, 2}, rng, -0.8, 0.8);
  const Tensor mask = Tensor::from_vector({2, 3}, std::vector<float>{1, 1, 1, 1, 0, 1});
  const StepRecord cpu = train_step_record(Device::CPU, input, target, mask);
  const StepRecord gpu = train_step_record(Device::CUDA, input, target, mask);
  REQUIRE(cpu.tensors.size() == gpu.tensors.size());
  double worst = 0;
  std::string worst_name;
  for (size_t i = 0; i < cpu.tensors.size(); ++i) {
    const auto& [name, c] = cpu.tensors[i];
    REQUIRE(gpu.tensors[i].first == name);
    REQUIRE_MESSAGE(gpu.tensors[i].second.shape() == c.shape(), name);
    const double err = normalised_error(gpu.tensors[i].second, c), tol = step_tolerance(name);
    INFO(name << ": normalised error " << err << " (tolerance " << tol << ")");
    CHECK(err <= tol);
    if (err / tol > worst) worst = err / tol, worst_name = name;
  }
  MESSAGE("training step: " << cpu.tensors.size() << " tensors compared; worst error/tolerance " << worst << " ("
                            << worst_name << ")");
}

#endif  // SPINEMARK_CUDA
