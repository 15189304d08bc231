// The op table (see op_table.h): each op of layers/ and train/optim/optimizer.h described once. Test
// shapes are those of the former per-file gradient checks and of the former CUDA parity table;
// timing shapes are about the size of the DSNT network's layers (batch 4–8, 64 channels, 64×48
// heatmaps of 68 corners). FLOP counts are approximate for everything but conv and linear.
#include "tests/ops/op_table.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "layers/activation.h"
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/dsnt.h"
#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/linear.h"
#include "layers/parameter_buffer.h"
#include "layers/pooling.h"
#include "layers/resize.h"
#include "layers/scalar_ops.h"
#include "tensor/device_backend.h"
#include "tensor/kernels/conv_geometry.h"
#include "tensor/kernels/dispatch.h"
#include "tensor/ops.h"
#include "train/optim/optimizer.h"

namespace sm::test {

using K = kernels::KernelId;

// ---- inputs -------------------------------------------------------------------------------------

Tensor OpMaker::place(const Tensor& host_f32) const {
  Tensor t = host_f32.to(dtype_).to(device_);
  if (t.storage() == host_f32.storage()) t = t.clone();  // never share storage with the caller's tensor
  return t;
}

Tensor OpMaker::uniform(const Shape& shape, double lo, double hi) {
  Tensor t = Tensor::empty(shape, DType::F32);
  tensor_fill_uniform(t, rng_, lo, hi);
  return t;
}

Tensor OpMaker::away_from_zero(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = float((rng_.bernoulli(0.5) ? 1 : -1) * rng_.uniform(0.2, 1.0));
  return t;
}

Tensor OpMaker::distinct(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  const int64_t n = t.numel();
  float* p = t.f32();
  for (int64_t i = 0; i < n; ++i) p[i] = float(0.01 * double(i));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng_.below(uint64_t(i + 1))]);
  return t;
}

// Softmax of logits in [-2, 2] per channel, computed in double: every cell >= ~e⁻⁴/(H·W), far
// enough from 0 for central differences of the divergences' logarithms.
Tensor OpMaker::heatmaps(const Shape& shape) {
  Tensor t = uniform(shape, -2, 2);
  const int64_t hw = shape[2] * shape[3];
  float* p = t.f32();
  for (int64_t ch = 0; ch < shape[0] * shape[1]; ++ch) {
    float* q = p + ch * hw;
    double sum = 0;
    for (int64_t i = 0; i < hw; ++i) sum += std::exp(double(q[i]));
    for (int64_t i = 0; i < hw; ++i) q[i] = float(std::exp(double(q[i])) / sum);
  }
  return t;
}

Tensor OpMaker::mask(int64_t n, int64_t c) {
  Tensor m = Tensor::empty({n, c}, DType::F32);
  for (int64_t i = 0; i < m.numel(); ++i) m.f32()[i] = i == 0 ? 1.f : (rng_.bernoulli(0.7) ? 1.f : 0.f);
  return m;
}

namespace {

double numel_of(const Shape& s) { return double(shape_numel(s)); }

// ---- elementwise ---------------------------------------------------------------------------------

OpInstance build_relu(OpMaker& m) {
  const Shape sh = m.timing() ? Shape{8, 64, 128, 96} : Shape{2, 3, 4, 5};
  Var x = m.leaf(m.away_from_zero(sh), "x");
  return {{x}, [x] { return relu(x); }, {}, {}, numel_of(sh), numel_of(sh)};
}

OpInstance build_add(OpMaker& m) {
  const Shape sh = m.timing() ? Shape{8, 64, 128, 96} : Shape{3, 5, 4, 4};
  Var a = m.leaf(m.uniform(sh), "a"), b = m.leaf(m.uniform(sh), "b");
  return {{a, b}, [a, b] { return add(a, b); }, {}, {}, numel_of(sh), 2 * numel_of(sh)};
}

// The same Var used twice: both uses' gradients must add up.
OpInstance build_add_self(OpMaker& m) {
  const Shape sh = m.timing() ? Shape{8, 64, 128, 96} : Shape{2, 3, 4};
  Var a = m.leaf(m.uniform(sh), "a");
  return {{a}, [a] { return add(a, a); }, {}, {}, numel_of(sh), 2 * numel_of(sh)};
}

// b = 0.25·a: a + b = 1.25·a keeps |a + b| >= 0.25, away from the kink.
OpInstance build_add_relu(OpMaker& m) {
  const Shape sh = m.timing() ? Shape{8, 64, 128, 96} : Shape{2, 4, 6, 6};
  Tensor a0 = m.away_from_zero(sh);
  Var a = m.leaf(a0, "a"), b = m.leaf(tensor_scale(a0, 0.25), "b");
  return {{a, b}, [a, b] { return add_relu(a, b); }, {}, {}, 2 * numel_of(sh), 3 * numel_of(sh)};
}

OpInstance build_reshape(OpMaker& m) {
  const Shape sh = m.timing() ? Shape{8, 64, 128, 96} : Shape{2, 3, 4};
  const Shape to = m.timing() ? Shape{512, 12288} : Shape{6, 4};
  Var a = m.leaf(m.uniform(sh), "a");
  return {{a}, [a, to] { return reshape(a, to); }, {}, {}, 0, 0};
}

OpInstance build_scale(OpMaker& m) {
  const Shape sh = m.timing() ? Shape{8, 64, 128, 96} : Shape{2, 3, 4, 5};
  Var x = m.leaf(m.uniform(sh), "x");
  return {{x}, [x] { return scale(x, -2.5); }, {}, {}, numel_of(sh), numel_of(sh)};
}

// ---- convolution ---------------------------------------------------------------------------------

struct ConvGeometry {
  int64_t n, cin, h, w, cout, kh, kw;
  Conv2dParams p;
};

OpCase conv_entry(const std::string& name, ConvGeometry test, ConvGeometry timing, bool bias) {
  OpCase c;
  c.name = name + (bias ? " +bias" : "");
  c.kernels = {K::conv2d_forward, K::conv2d_backward};
  c.build = [test, timing, bias](OpMaker& m) {
    const ConvGeometry& g = m.timing() ? timing : test;
    Var x = m.leaf(m.uniform({g.n, g.cin, g.h, g.w}), "x");
    Var w = m.leaf(m.uniform({g.cout, g.cin, g.kh, g.kw}, -0.3, 0.3), "weight");
    Var b = bias ? m.leaf(m.uniform({g.cout}), "bias") : Var();
    std::vector<Var> leaves{x, w};
    if (bias) leaves.push_back(b);
    const Conv2dParams p = g.p;
    const double ho = double(kernels::conv_out_size(g.h, g.kh, p.stride_h, p.pad_h, p.dilation_h));
    const double wo = double(kernels::conv_out_size(g.w, g.kw, p.stride_w, p.pad_w, p.dilation_w));
    const double outs = double(g.n * g.cout) * ho * wo, macs = outs * double(g.cin * g.kh * g.kw);
    return OpInstance{leaves, [x, w, b, p] { return conv2d(x, w, b, p); }, {}, {},
                      2 * macs + (bias ? outs : 0), 4 * macs + (bias ? outs : 0)};
  };
  c.tol_strict = 1e-5;  // cuDNN float32 (FMA) vs float64
  c.tol_tf32 = 5e-3;    // TF32: 10 mantissa bits
  return c;
}

// ---- normalisation, pooling, linear, resize --------------------------------------------------------

OpInstance build_batchnorm(OpMaker& m, bool training, bool affine) {
  const Shape xs = m.timing() ? Shape{8, 64, 128, 96} : Shape{4, 3, 5, 6};
  const int64_t c = xs[1];
  Var x = m.leaf(m.uniform(xs, -2, 3), "x");
  Var w = affine ? m.leaf(m.uniform({c}, 0.5, 1.5), "weight") : Var();
  Var b = affine ? m.leaf(m.uniform({c}), "bias") : Var();
  auto rm = std::make_shared<Tensor>(m.place(m.uniform({c})));
  auto rv = std::make_shared<Tensor>(m.place(m.uniform({c}, 0.5, 2.0)));
  std::vector<Var> leaves{x};
  if (affine) leaves.push_back(w), leaves.push_back(b);
  OpInstance inst;
  inst.leaves = leaves;
  inst.forward = [=] { return batchnorm2d(x, w, b, rm.get(), rv.get(), training, BatchNormParams{}); };
  inst.state = [=] { return std::vector<NamedTensor>{{"running_mean", *rm}, {"running_var", *rv}}; };
  inst.flops_forward = (training ? 7 : 4) * numel_of(xs);
  inst.flops_backward = (training ? 9 : 5) * numel_of(xs);
  return inst;
}

OpInstance build_max_pool(OpMaker& m, MaxPool2dParams p) {
  const Shape xs = m.timing() ? Shape{8, 64, 128, 96} : Shape{2, 3, 9, 8};
  Var x = m.leaf(m.distinct(xs), "x");  // no ties: the argmax is stable under ±h
  const int64_t s = p.stride ? p.stride : p.kernel;
  const double outs = double(xs[0] * xs[1]) *
                      double(kernels::conv_out_size(xs[2], p.kernel, s, p.padding, 1)) *
                      double(kernels::conv_out_size(xs[3], p.kernel, s, p.padding, 1));
  return {{x}, [x, p] { return max_pool2d(x, p); }, {}, {}, outs * double(p.kernel * p.kernel), outs};
}

OpInstance build_global_avg_pool(OpMaker& m) {
  const Shape xs = m.timing() ? Shape{32, 512, 8, 6} : Shape{3, 5, 7, 6};
  Var x = m.leaf(m.uniform(xs), "x");
  return {{x}, [x] { return global_avg_pool(x); }, {}, {}, numel_of(xs), numel_of(xs)};
}

OpInstance build_linear(OpMaker& m, bool bias) {
  const int64_t n = m.timing() ? 256 : 5, in = m.timing() ? 512 : 37, out = m.timing() ? 512 : 11;
  Var x = m.leaf(m.uniform({n, in}), "x"), w = m.leaf(m.uniform({out, in}), "weight");
  Var b = bias ? m.leaf(m.uniform({out}), "bias") : Var();
  std::vector<Var> leaves{x, w};
  if (bias) leaves.push_back(b);
  const double macs = double(n * in * out);
  return {leaves, [x, w, b] { return linear(x, w, b); }, {}, {}, 2 * macs, 4 * macs};
}

OpInstance build_resize(OpMaker& m, Shape test_in, int64_t oh, int64_t ow, Shape timing_in, int64_t toh, int64_t tow) {
  const Shape xs = m.timing() ? timing_in : test_in;
  if (m.timing()) oh = toh, ow = tow;
  Var x = m.leaf(m.uniform(xs), "x");
  const double outs = double(xs[0] * xs[1] * oh * ow);
  return {{x}, [x, oh, ow] { return resize_bilinear(x, oh, ow); }, {}, {}, 7 * outs, 8 * outs};
}

// ---- DSNT and its losses ------------------------------------------------------------------------------

Shape heatmap_shape(const OpMaker& m, Shape test) { return m.timing() ? Shape{8, 68, 64, 48} : test; }

OpInstance build_flat_softmax(OpMaker& m) {
  const Shape sh = heatmap_shape(m, {2, 3, 8, 8});
  Var z = m.leaf(m.uniform(sh, -4, 4), "z");
  return {{z}, [z] { return flat_softmax(z); }, {}, {}, 5 * numel_of(sh), 4 * numel_of(sh)};
}

OpInstance build_dsnt(OpMaker& m) {
  const Shape sh = heatmap_shape(m, {2, 3, 6, 9});
  Var p = m.leaf(m.heatmaps(sh), "p");
  return {{p}, [p] { return dsnt(p); }, {}, {}, 4 * numel_of(sh), 4 * numel_of(sh)};
}

OpInstance build_gaussian_heatmaps(OpMaker& m) {
  const Shape sh = heatmap_shape(m, {2, 4, 7, 10});
  const Tensor centres = m.place(m.uniform({sh[0], sh[1], 2}, -1.2, 1.2));
  const int64_t h = sh[2], w = sh[3];
  return {{}, [centres, h, w] { return Var(gaussian_heatmaps(centres, h, w, 1.3)); }, {}, {}, 10 * numel_of(sh), 0};
}

// Output float32 on the CPU whatever the input's device.
OpInstance build_heatmap_spread(OpMaker& m) {
  const Shape sh = heatmap_shape(m, {2, 3, 6, 7});
  const Tensor p = m.place(m.heatmaps(sh));
  return {{}, [p] { return Var(heatmap_spread(p)); }, {}, {}, 8 * numel_of(sh), 0};
}

OpInstance build_euclidean(OpMaker& m) {
  const int64_t n = m.timing() ? 64 : 3, c = m.timing() ? 68 : 4;
  Tensor mu = m.uniform({n, c, 2}), t = m.uniform({n, c, 2});
  mu.f32()[2] = t.f32()[2], mu.f32()[3] = t.f32()[3];  // one zero distance: gradient 0 there
  Var muv = m.leaf(mu, "mu");
  const Tensor target = m.place(t), mask = m.place(m.mask(n, c));
  return {{muv}, [=] { return euclidean_loss(muv, target, mask); }, {}, {}, 8.0 * double(n * c), 6.0 * double(n * c)};
}

enum class Reg { JS, KL, Variance };

OpInstance build_regulariser(OpMaker& m, Reg kind) {
  const Shape sh = heatmap_shape(m, {2, 3, 8, 8});
  Var p = m.leaf(m.heatmaps(sh), "p");
  const Tensor target = m.place(m.uniform({sh[0], sh[1], 2}, -0.8, 0.8)), mask = m.place(m.mask(sh[0], sh[1]));
  std::function<Var()> f;
  if (kind == Reg::JS) f = [=] { return js_regularizer(p, target, 1.0, mask); };
  if (kind == Reg::KL) f = [=] { return kl_regularizer(p, target, 0.8, mask); };
  if (kind == Reg::Variance) f = [=] { return variance_regularizer(p, 1.5, mask); };
  const double per_cell = kind == Reg::Variance ? 8 : 20;  // the divergences build Q first
  return {{p}, f, {}, {}, per_cell * numel_of(sh), 8 * numel_of(sh)};
}

OpInstance build_pointwise_loss(OpMaker& m, bool l1) {
  const int64_t n = m.timing() ? 64 : 2, c = m.timing() ? 68 : 3;
  Var a = m.leaf(m.uniform({n, c, 2}), "a");
  const Tensor target = m.place(m.uniform({n, c, 2})), mask = m.place(m.mask(n, c));
  std::function<Var()> f = l1 ? std::function<Var()>([=] { return l1_loss(a, target, mask); })
                              : std::function<Var()>([=] { return mse_loss(a, target, mask); });
  return {{a}, f, {}, {}, 4.0 * double(n * c * 2), 3.0 * double(n * c * 2)};
}

// ---- optimizers ----------------------------------------------------------------------------------------

enum class Opt { Sgd, Adam, AdamW, Rmsprop };

// One parameter of n elements and `steps` random gradients; the state is the parameter and every
// moment buffer (names as in checkpoints, e.g. "adam.exp_avg.w").
OpInstance build_optimizer(OpMaker& m, Opt kind, int steps) {
  const int64_t n = m.timing() ? (int64_t(1) << 22) : 1000;
  Var param(m.place(m.uniform({n})), true, "w");
  std::vector<Tensor> grads;
  for (int i = 0; i < steps; ++i) grads.push_back(m.place(m.uniform({n})));
  auto buf = std::make_shared<ParameterBuffer>(std::vector<NamedVar>{{"w", param}});
  std::shared_ptr<Optimizer> opt;
  double per_element = 15;
  if (kind == Opt::Sgd) {
    SgdConfig sc;
    sc.lr = 0.05, sc.momentum = 0.9, sc.weight_decay = 1e-2, sc.nesterov = true;
    opt = std::make_shared<Sgd>(*buf, sc), per_element = 7;
  } else if (kind == Opt::Rmsprop) {
    RmspropConfig rc;
    rc.lr = 1e-2, rc.momentum = 0.5, rc.centered = true, rc.weight_decay = 1e-3;
    opt = std::make_shared<Rmsprop>(*buf, rc);
  } else {
    AdamConfig ac;
    ac.lr = 1e-2, ac.weight_decay = 1e-2;
    opt = kind == Opt::Adam ? std::make_shared<Adam>(*buf, ac) : std::make_shared<AdamW>(*buf, ac);
  }
  OpInstance inst;
  inst.leaves = {param};  // shown by op_bench; optimizers are not gradient-checked
  inst.step = [buf, opt, grads](int i) {
    buf->groups()[0].grads.copy_(grads[size_t(i) % grads.size()]);
    opt->step();
  };
  inst.state = [buf, opt] {
    std::vector<NamedTensor> s{{"param", buf->groups()[0].values}};
    for (const NamedTensor& nt : opt->state_named())
      if (nt.first.find(".step") == std::string::npos) s.push_back(nt);
    return s;
  };
  inst.flops_forward = per_element * double(n);
  return inst;
}

OpCase entry(std::string name, std::vector<K> kernels, std::function<OpInstance(OpMaker&)> build, double tol = 1e-5,
             unsigned flags = 0) {
  OpCase c;
  c.name = std::move(name);
  c.build = std::move(build);
  c.kernels = std::move(kernels);
  c.tol_strict = c.tol_tf32 = tol;
  c.flags = flags;
  return c;
}

// Parity tolerances, ‖gpu − cpu‖₂/‖cpu‖₂ of GPU strict float32 against the CPU in float64.
constexpr double kTolElementwise = 1e-6;  // exact float ops, one rounding
constexpr double kTolReduce = 1e-5;       // sums in another order (softmax, DSNT, BN, pooling, resize)
constexpr double kTolLoss = 1e-5;         // float32 per-cell terms, double sums
constexpr double kTolOptim = 1e-6;        // a few float32 roundings per element and step

std::vector<OpCase> table_make() {
  using P = Conv2dParams;
  std::vector<OpCase> t;
  t.push_back(entry("relu", {K::relu_forward, K::relu_backward}, build_relu, kTolElementwise));
  t.push_back(entry("scale", {K::scale}, build_scale, kTolElementwise));
  t.push_back(entry("add", {K::add_forward}, build_add, kTolElementwise));
  t.push_back(entry("add (one input twice)", {K::add_forward}, build_add_self, kTolElementwise));
  t.push_back(entry("add_relu", {K::add_relu_forward, K::add_relu_backward}, build_add_relu, kTolElementwise));
  t.push_back(entry("reshape", {}, build_reshape, kTolElementwise));

  // Convolutions: the ResNet's (stem, 3×3, strided 3×3, 1×1 projection, dilated last stage) and
  // the corner cases of the former test_layers gradient check. Timing shapes: batch 4.
  const ConvGeometry t3{4, 64, 64, 48, 64, 3, 3, P::make(1, 1)};
  t.push_back(conv_entry("conv 3x3 s1 p1", {2, 5, 9, 8, 7, 3, 3, P::make(1, 1)}, t3, true));
  t.push_back(conv_entry("conv 3x3 s1 p1", {2, 2, 5, 6, 3, 3, 3, P::make(1, 1)}, t3, false));
  t.push_back(conv_entry("conv 7x7 s2 p3 (stem)", {2, 1, 20, 18, 8, 7, 7, P::make(2, 3)},
                         {4, 1, 256, 192, 64, 7, 7, P::make(2, 3)}, false));
  t.push_back(conv_entry("conv 1x1 s2 (projection)", {2, 6, 8, 8, 12, 1, 1, P::make(2, 0)},
                         {4, 64, 64, 48, 128, 1, 1, P::make(2, 0)}, false));
  t.push_back(conv_entry("conv 1x1 s1 (direct)", {2, 3, 4, 5, 4, 1, 1, P::make(1, 0)},
                         {4, 64, 64, 48, 256, 1, 1, P::make(1, 0)}, true));
  t.push_back(conv_entry("conv 3x3 s2 p1", {3, 4, 11, 10, 6, 3, 3, P::make(2, 1)},
                         {4, 64, 64, 48, 128, 3, 3, P::make(2, 1)}, false));
  t.push_back(conv_entry("conv 3x3 d2 p2 (dilated)", {2, 3, 7, 7, 2, 3, 3, P::make(1, 2, 2)},
                         {4, 128, 32, 24, 128, 3, 3, P::make(1, 2, 2)}, true));
  t.push_back(conv_entry("conv 3x3 s2 d3 p3", {1, 2, 9, 8, 4, 3, 3, P::make(2, 3, 3)},
                         {4, 64, 64, 48, 64, 3, 3, P::make(2, 3, 3)}, false));
  t.push_back(conv_entry("conv 2x3 non-square", {2, 2, 6, 7, 3, 2, 3, P{2, 1, 0, 1, 1, 2}},
                         {4, 64, 64, 48, 64, 2, 3, P{2, 1, 0, 1, 1, 2}}, true));

  t.push_back(entry("batchnorm2d train", {K::batchnorm_forward_train, K::batchnorm_backward},
                    [](OpMaker& m) { return build_batchnorm(m, true, true); }, kTolReduce));
  t.push_back(entry("batchnorm2d eval", {K::batchnorm_forward_eval, K::batchnorm_backward},
                    [](OpMaker& m) { return build_batchnorm(m, false, true); }, kTolReduce));
  t.push_back(entry("batchnorm2d train, no affine", {K::batchnorm_forward_train, K::batchnorm_backward},
                    [](OpMaker& m) { return build_batchnorm(m, true, false); }, kTolReduce));
  t.push_back(entry("max_pool2d 3x3 s2 p1", {K::max_pool2d_forward, K::max_pool2d_backward},
                    [](OpMaker& m) { return build_max_pool(m, {3, 2, 1}); }, kTolElementwise));
  t.push_back(entry("max_pool2d 2x2", {K::max_pool2d_forward, K::max_pool2d_backward},
                    [](OpMaker& m) { return build_max_pool(m, {2, 2, 0}); }, kTolElementwise));
  t.push_back(entry("global_avg_pool", {K::global_avg_pool_forward, K::global_avg_pool_backward},
                    build_global_avg_pool, kTolReduce));
  OpCase lin = entry("linear +bias", {K::linear_forward, K::linear_backward},
                     [](OpMaker& m) { return build_linear(m, true); }, 1e-5);
  lin.tol_tf32 = 5e-3;
  t.push_back(lin);
  lin = entry("linear", {K::linear_forward, K::linear_backward},
              [](OpMaker& m) { return build_linear(m, false); }, 1e-5);
  lin.tol_tf32 = 5e-3;
  t.push_back(lin);
  t.push_back(entry("resize_bilinear up", {K::resize_bilinear_forward, K::resize_bilinear_backward},
                    [](OpMaker& m) { return build_resize(m, {2, 3, 5, 7}, 9, 12, {8, 64, 32, 24}, 64, 48); }, kTolReduce));
  t.push_back(entry("resize_bilinear down", {K::resize_bilinear_forward, K::resize_bilinear_backward},
                    [](OpMaker& m) { return build_resize(m, {2, 3, 8, 8}, 3, 5, {8, 64, 64, 48}, 32, 24); }, kTolReduce));
  t.push_back(entry("resize_bilinear same size", {K::resize_bilinear_forward, K::resize_bilinear_backward},
                    [](OpMaker& m) { return build_resize(m, {2, 2, 5, 4}, 5, 4, {8, 64, 64, 48}, 64, 48); }, kTolReduce));

  t.push_back(entry("flat_softmax", {K::flat_softmax_forward, K::flat_softmax_backward},
                    build_flat_softmax, kTolReduce));
  t.push_back(entry("dsnt", {K::dsnt_forward, K::dsnt_backward}, build_dsnt, kTolReduce));
  t.push_back(entry("gaussian_heatmaps", {K::gaussian_heatmaps}, build_gaussian_heatmaps, kTolLoss, kOpNoGradient));
  t.push_back(entry("heatmap_spread", {}, build_heatmap_spread, kTolElementwise, kOpNoGradient));
  t.push_back(entry("euclidean_loss (mask)", {K::euclidean_loss_forward, K::euclidean_loss_backward},
                    build_euclidean, kTolLoss));
  t.push_back(entry("js_regularizer (mask)", {K::gaussian_heatmaps, K::js_forward, K::js_backward},
                    [](OpMaker& m) { return build_regulariser(m, Reg::JS); }, kTolLoss));
  t.push_back(entry("kl_regularizer (mask)", {K::gaussian_heatmaps, K::kl_forward, K::kl_backward},
                    [](OpMaker& m) { return build_regulariser(m, Reg::KL); }, kTolLoss));
  t.push_back(entry("variance_regularizer (mask)", {K::variance_forward, K::variance_backward},
                    [](OpMaker& m) { return build_regulariser(m, Reg::Variance); }, kTolLoss));
  t.push_back(entry("mse_loss (mask)", {K::elementwise_loss_forward, K::elementwise_loss_backward},
                    [](OpMaker& m) { return build_pointwise_loss(m, false); }, kTolLoss));
  t.push_back(entry("l1_loss (mask)", {K::elementwise_loss_forward, K::elementwise_loss_backward},
                    [](OpMaker& m) { return build_pointwise_loss(m, true); }, kTolLoss));

  const int steps = 3;
  auto opt_entry = [&](const char* name, Opt kind, K kernel) {
    return entry(name, {kernel}, [kind, steps](OpMaker& m) { return build_optimizer(m, kind, steps); }, kTolOptim,
                 kOpOptimizer);
  };
  t.push_back(opt_entry("sgd (momentum, nesterov, wd)", Opt::Sgd, K::sgd_step));
  t.push_back(opt_entry("adam (wd)", Opt::Adam, K::adam_step));
  t.push_back(opt_entry("adamw", Opt::AdamW, K::adam_step));
  t.push_back(opt_entry("rmsprop (centered, momentum, wd)", Opt::Rmsprop, K::rmsprop_step));
  for (OpCase& c : t)
    if (c.has(kOpOptimizer)) c.steps = steps;
  return t;
}

Tensor host_f64(const Tensor& t) { return t.to(Device::CPU).to(DType::F64).contiguous(); }

}  // namespace

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table = table_make();
  return table;
}

const char* op_kernel_missing(const OpCase& op, Device device) {
  for (K k : op.kernels)
    if (!kernels::supports(k, device, DType::F32)) return kernels::kernel_name(k);
  return nullptr;
}

// ---- running an entry ---------------------------------------------------------------------------

OpResult op_run(const OpCase& op, DType dtype, Device device, uint64_t seed, const std::vector<double>& prefill_scale) {
  Rng rng(seed);
  OpMaker m(rng, dtype, device, OpSize::Test);
  OpInstance inst = op.build(m);
  OpResult r;
  if (op.has(kOpOptimizer)) {
    for (int s = 0; s < op.steps; ++s) inst.step(s);
  } else {
    Rng seed_rng(seed, 1), prefill_rng(seed, 2);
    std::vector<Tensor> prefill(inst.leaves.size());
    for (size_t i = 0; i < inst.leaves.size(); ++i) {
      const double s = i < prefill_scale.size() ? prefill_scale[i] : 0.0;
      if (s <= 0) continue;
      OpMaker pm(prefill_rng, dtype, device, OpSize::Test);
      Tensor p = pm.uniform(inst.leaves[i].shape(), -s, s);
      inst.leaves[i].grad() = m.place(p);
      prefill[i] = p.to(DType::F64);
    }
    Var out = inst.forward();
    r.outputs.push_back({"out", host_f64(out.value())});
    if (!op.has(kOpNoGradient)) {
      OpMaker seed_maker(seed_rng, dtype, device, OpSize::Test);
      backward(out, m.place(seed_maker.uniform(out.shape())));  // the gradient of dot(out, R)
      for (size_t i = 0; i < inst.leaves.size(); ++i) {
        const Var& leaf = inst.leaves[i];
        SM_CHECK(leaf.grad().defined(), op.name << ": no gradient reached leaf '" << leaf.name() << "'");
        Tensor g = host_f64(leaf.grad());
        if (prefill[i].defined()) g = tensor_sub(g, prefill[i]);
        r.outputs.push_back({"d" + leaf.name(), g});
      }
    }
  }
  if (inst.state)
    for (const NamedTensor& nt : inst.state()) r.outputs.push_back({nt.first, host_f64(nt.second)});
  return r;
}

double normalised_error(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector_f64(), y = b.to_vector_f64();
  SM_CHECK(x.size() == y.size(), "normalised_error: " << a.str() << " vs " << b.str());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) num += (x[i] - y[i]) * (x[i] - y[i]), den += y[i] * y[i];
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// ---- GPU modes ----------------------------------------------------------------------------------------
// Through the backend-neutral switches of tensor/device_backend.h (a CPU-only build answers with
// its defaults: nothing to switch).

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

std::string gpu_describe() { return device_backend().describe(); }
bool gpu_tf32_active() { return device_backend().tf32_active(); }
void gpu_mode_set(bool strict, bool deterministic) {
  device_backend().strict_mode_set(strict);
  device_backend().deterministic_mode_set(deterministic);
}
void gpu_mode_get(bool& strict, bool& deterministic) {
  strict = device_backend().strict_mode();
  deterministic = device_backend().deterministic_mode();
}
std::string gpu_memory_describe() { return device_backend().memory_describe(); }

void gpu_synchronize() {
  if (gpu_usable()) device_backend().synchronize();
}

}  // namespace sm::test
