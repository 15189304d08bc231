// Tests of the inference snapshot (Module::inference_freeze, layers/conv_bn_fold.h and
// kernels::Conv2dWeightCache): a folded conv equals conv → BN (→ ReLU) in float64 to rounding; a
// frozen ResNet gives the unfrozen network's output for every conv algorithm and kernel family;
// a prepared (cached) conv gives the same bits as an unprepared one, and a second call through
// the filled cache the same bits again; the snapshot follows train(), to_dtype() and
// weights_load(); a forward that records a graph does not use it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

#include "autograd/var.h"
#include "layers/conv_bn_fold.h"
#include "layers/resnet.h"
#include "layers/weights.h"
#include "tensor/kernels/context.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace sm;

namespace {

Tensor random(const Shape& s, Rng& rng, DType dtype = DType::F32, double lo = -1, double hi = 1) {
  Tensor t = Tensor::empty(s, dtype);
  tensor_fill_uniform(t, rng, lo, hi);
  return t;
}

// max |a − b| / (1 + max |b|): relative to the output's scale.
double rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  const Tensor a64 = a.to(DType::F64).contiguous(), b64 = b.to(DType::F64).contiguous();
  double d = 0, m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, std::abs(a64.f64()[i] - b64.f64()[i]));
    m = std::max(m, std::abs(b64.f64()[i]));
  }
  return d / (1 + m);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel() || a.dtype() != b.dtype()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.f32()[i] != b.f32()[i]) return false;
  return true;
}

// Every BN of m gets statistics and affine parameters far from the identity (γ in [0.5, 1.5],
// β in [−0.5, 0.5], μ in [−0.3, 0.3], σ² in [0.5, 2]), so that folding them is visible.
void bn_randomise(Module& m, Rng& rng) {
  auto fill = [&](const std::string& name, Var v) {
    Tensor& t = v.value_mut();
    const auto ends = [&](const char* suffix) {
      const std::string s(suffix);
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends("running_mean")) tensor_fill_uniform(t, rng, -0.3, 0.3);
    if (ends("running_var")) tensor_fill_uniform(t, rng, 0.5, 2.0);
    if (t.dim() == 1 && ends("weight")) tensor_fill_uniform(t, rng, 0.5, 1.5);
    if (t.dim() == 1 && ends("bias")) tensor_fill_uniform(t, rng, -0.5, 0.5);
  };
  for (auto& [name, v] : m.state_dict()) fill(name, v);
}

ResNetConfig small_backbone() {
  ResNetConfig c;
  c.depth = 18;
  c.widths = {16, 32, 32, 64};
  c.in_channels = 1;
  c.output_stride = 16;
  c.dilate = false;
  return c;
}

// Two threads, this conv algorithm and kernel family, for the scope of the object.
struct KernelChoice {
  ExecContext ctx;
  std::optional<ExecScope> scope;
  KernelChoice(ConvAlgo algo, CpuKernels family) {
    ctx.threads = 2;
    ctx.conv_algo = algo;
    ctx.cpu_kernels = family;
    scope.emplace(ctx);
  }
};

Tensor forward_value(Module& m, const Tensor& x) {
  NoGradGuard ng;
  return m.forward(Var(x)).value().clone();
}

}  // namespace

TEST_CASE("a folded conv equals conv -> BN (-> ReLU) in float64") {
  Rng rng(7);
  for (const bool bias : {false, true}) {
    Conv2d conv(5, 7, 3, rng, Conv2dParams::make(2, 1), bias);
    BatchNorm2d bn(7);
    bn_randomise(bn, rng);
    conv.to_dtype(DType::F64);
    bn.to_dtype(DType::F64);
    bn.eval();
    const Tensor x = random({2, 5, 9, 8}, rng, DType::F64);
    NoGradGuard ng;
    const Tensor ref = bn.forward(conv.forward(Var(x))).value();
    FoldedConv folded(conv, &bn);
    CHECK(rel_diff(folded.forward(Var(x), false).value(), ref) < 1e-13);
    const Tensor with_relu = folded.forward(Var(x), true).value();
    Tensor ref_relu = ref.clone();
    for (int64_t i = 0; i < ref_relu.numel(); ++i) ref_relu.f64()[i] = std::max(ref_relu.f64()[i], 0.0);
    CHECK(rel_diff(with_relu, ref_relu) < 1e-13);
    // Without a BN: the conv itself.
    FoldedConv plain(conv, nullptr);
    CHECK(rel_diff(plain.forward(Var(x), false).value(), conv.forward(Var(x)).value()) < 1e-15);
  }
}

TEST_CASE("a prepared conv gives the bits of an unprepared one, call after call") {
  Rng rng(11);
  struct Case {
    const char* name;
    int64_t c, k, h, w, kernel, stride, pad;
    ConvAlgo algo;
  };
  const Case cases[] = {{"3x3 direct", 16, 24, 12, 10, 3, 1, 1, ConvAlgo::Direct},
                        {"3x3 F(2,3)", 16, 24, 12, 10, 3, 1, 1, ConvAlgo::WinogradF2},
                        {"3x3 F(4,3)", 16, 24, 12, 10, 3, 1, 1, ConvAlgo::WinogradF4},
                        {"3x3 auto, large", 64, 64, 32, 32, 3, 1, 1, ConvAlgo::Auto},
                        {"1x1", 32, 20, 7, 9, 1, 1, 0, ConvAlgo::Auto},
                        {"7x7 stride 2", 1, 16, 20, 18, 7, 2, 3, ConvAlgo::Auto}};
  for (const CpuKernels family : {CpuKernels::Auto, CpuKernels::Scalar, CpuKernels::Portable})
    for (const Case& cs : cases) {
      CAPTURE(cs.name);
      CAPTURE(int(family));
      KernelChoice choice(cs.algo, family);
      kernels::Conv2dGeometry g;
      g.n = 2, g.c = cs.c, g.h = cs.h, g.w = cs.w, g.k = cs.k, g.kh = cs.kernel, g.kw = cs.kernel;
      g.stride_h = g.stride_w = cs.stride, g.pad_h = g.pad_w = cs.pad;
      const Tensor x = random({g.n, g.c, g.h, g.w}, rng), w = random({g.k, g.c, g.kh, g.kw}, rng),
                   b = random({g.k}, rng);
      const Shape ys{g.n, g.k, g.out_h(), g.out_w()};
      Tensor plain = Tensor::empty(ys), first = Tensor::empty(ys), second = Tensor::empty(ys);
      kernels::conv2d_forward(g, x, w, b, plain);
      kernels::Conv2dWeightCache cache;
      kernels::Conv2dForwardOptions o;
      o.cache = &cache;
      kernels::conv2d_forward(g, x, w, b, first, o);
      CHECK(cache.cpu != nullptr);
      kernels::conv2d_forward(g, x, w, b, second, o);
      CHECK(same_bits(first, plain));
      CHECK(same_bits(second, plain));
      // The fused ReLU is max(0, ·) of the same bits.
      Tensor fused = Tensor::empty(ys);
      o.relu = true;
      kernels::conv2d_forward(g, x, w, b, fused, o);
      Tensor expect = plain.clone();
      for (int64_t i = 0; i < expect.numel(); ++i) expect.f32()[i] = std::max(expect.f32()[i], 0.f);
      CHECK(same_bits(fused, expect));
    }
}

TEST_CASE("a frozen ResNet gives the unfrozen network's output") {
  for (const ConvAlgo algo : {ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::WinogradF2, ConvAlgo::WinogradF4})
    for (const CpuKernels family : {CpuKernels::Auto, CpuKernels::Portable}) {
      CAPTURE(int(algo));
      CAPTURE(int(family));
      KernelChoice choice(algo, family);
      Rng rng(3);
      ResNet net(small_backbone(), rng);
      bn_randomise(net, rng);
      const Tensor x = random({2, 1, 64, 48}, rng);
      net.eval();
      const Tensor ref = forward_value(net, x);
      net.inference_freeze();
      CHECK(net.inference_frozen());
      CHECK_FALSE(net.training());
      const Tensor frozen = forward_value(net, x);
      // float32 rounding only: the folded weights are rounded once, the BN pass is gone.
      CHECK(rel_diff(frozen, ref) < 2e-5);
      CHECK(same_bits(forward_value(net, x), frozen));  // the prepared weights reused: same bits
    }
}

TEST_CASE("the snapshot follows train(), to_dtype() and weights_load(), and serves no graph") {
  Rng rng(5);
  ResNet net(small_backbone(), rng);
  bn_randomise(net, rng);
  const Tensor x = random({1, 1, 48, 48}, rng);
  net.inference_freeze();
  const Tensor frozen = forward_value(net, x);

  SUBCASE("a forward that records a graph runs the layers (and can go backward)") {
    Var xv(x, true);
    Var y = net.forward(xv);
    CHECK(y.requires_grad());
    CHECK(rel_diff(y.value(), frozen) < 2e-5);
  }
  SUBCASE("train() drops it; weights changed in training are seen after freezing again") {
    net.train();
    CHECK_FALSE(net.inference_frozen());
    for (auto& [name, v] : net.named_parameters()) tensor_scale_(v.value_mut(), 0.9);
    net.eval();
    const Tensor ref = forward_value(net, x);
    CHECK(rel_diff(ref, frozen) > 1e-3);  // the change is visible
    net.inference_freeze();
    CHECK(rel_diff(forward_value(net, x), ref) < 2e-5);
  }
  SUBCASE("weights_load() freezes again from the loaded weights") {
    Rng other_rng(99);
    ResNet other(small_backbone(), other_rng);
    bn_randomise(other, other_rng);
    const std::string path = std::string("test_inference_freeze_") + std::to_string(::getpid()) + ".safetensors";
    weights_save(path, other);
    weights_load(path, net);
    std::remove(path.c_str());
    CHECK(net.inference_frozen());
    other.eval();
    CHECK(rel_diff(forward_value(net, x), forward_value(other, x)) < 2e-5);
  }
  SUBCASE("to_dtype() freezes again in the new dtype") {
    net.to_dtype(DType::F64);
    CHECK(net.inference_frozen());
    const Tensor y64 = forward_value(net, x.to(DType::F64));
    CHECK(y64.dtype() == DType::F64);
    CHECK(rel_diff(y64, frozen) < 2e-5);
  }
}
