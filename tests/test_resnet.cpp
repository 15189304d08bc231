// Tests of the ResNet blocks and backbone builder: gradient checks (double precision) of
// BasicBlock, Bottleneck and a tiny ResNet; output shapes for output strides 8/16/32; the exact
// torchvision parameter names and counts (resnet18/50 with a grayscale input and no fc).
#include <doctest/doctest.h>

#include <set>

#include "autograd/gradcheck.h"
#include "layers/resnet.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace sm;

namespace {

Var leaf_make(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty(shape, DType::F64);
  tensor_fill_uniform(t, rng, -1.0, 1.0);
  return Var(t, true);
}

void check_module_grad(Module& m, const Var& x) {
  m.to_dtype(DType::F64);
  std::vector<Var> leaves{x};
  for (auto& [name, v] : m.named_parameters()) leaves.push_back(v);
  GradcheckOptions opt;
  opt.atol = 1e-5;
  opt.rtol = 1e-4;
  opt.max_elements_per_leaf = 60;
  GradcheckResult r = gradcheck([&] { return m.forward(x); }, leaves, opt);
  INFO(r.report);
  CHECK(r.ok);
}

std::vector<std::string> names_of(const std::vector<NamedVar>& v) {
  std::vector<std::string> out;
  for (auto& [n, var] : v) out.push_back(n);
  return out;
}

// torchvision resnet18 parameter count by formula, for `in` input channels, no fc.
int64_t resnet18_params_formula(int64_t in) {
  auto conv = [](int64_t ci, int64_t co, int64_t k) { return ci * co * k * k; };
  auto bn = [](int64_t c) { return 2 * c; };
  int64_t n = conv(in, 64, 7) + bn(64);
  const int64_t widths[4] = {64, 128, 256, 512};
  int64_t inplanes = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t w = widths[s];
    for (int b = 0; b < 2; ++b) {
      const int64_t ci = b == 0 ? inplanes : w;
      n += conv(ci, w, 3) + bn(w) + conv(w, w, 3) + bn(w);
      if (b == 0 && ci != w) n += conv(ci, w, 1) + bn(w);
    }
    inplanes = w;
  }
  return n;
}

}  // namespace

TEST_CASE("BasicBlock gradient check: identity, strided downsample, dilated") {
  Rng rng(1);
  {
    BasicBlock blk(3, 3, {1, 1, 1}, false, rng);
    check_module_grad(blk, leaf_make({2, 3, 5, 5}, rng));
  }
  {
    BasicBlock blk(2, 3, {2, 1, 1}, true, rng);
    CHECK(names_of(blk.named_parameters()) ==
          std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                                   "downsample.0.weight", "downsample.1.weight", "downsample.1.bias"});
    check_module_grad(blk, leaf_make({2, 2, 6, 6}, rng));
  }
  {
    BasicBlock blk(2, 2, {1, 1, 2}, false, rng);
    check_module_grad(blk, leaf_make({2, 2, 6, 6}, rng));
  }
}

TEST_CASE("Bottleneck gradient check and names") {
  Rng rng(2);
  Bottleneck blk(4, 2, {2, 1, 1}, true, rng);
  CHECK(names_of(blk.named_parameters()) ==
        std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                                 "conv3.weight", "bn3.weight", "bn3.bias", "downsample.0.weight",
                                 "downsample.1.weight", "downsample.1.bias"});
  check_module_grad(blk, leaf_make({2, 4, 6, 6}, rng));
}

TEST_CASE("tiny ResNet gradient check (train mode), dilated last stage") {
  Rng rng(3);
  ResNetConfig cfg;
  cfg.depth = 0;
  cfg.blocks = {1, 1};
  cfg.widths = {2, 3};
  cfg.output_stride = 4;  // stage 2 dilated instead of strided
  ResNet net(cfg, rng);
  CHECK(net.out_channels() == 3);
  Var x = leaf_make({2, 1, 12, 12}, rng);
  check_module_grad(net, x);
  CHECK(net(x).shape() == Shape{2, 3, 3, 3});
}

TEST_CASE("ResNet output shapes for output strides 8, 16, 32 (and the undilated variant)") {
  Rng rng(4);
  Tensor img = Tensor::zeros({1, 1, 64, 64});
  for (int64_t os : {8, 16, 32}) {
    for (bool dilate : {true, false}) {
      ResNetConfig cfg;
      cfg.widths = {4, 8, 16, 32};
      cfg.output_stride = os;
      cfg.dilate = dilate;
      ResNet net(cfg, rng);
      CHECK(net.out_channels() == 32);
      std::vector<Var> st = net.forward_stages(Var(img));
      REQUIRE(st.size() == 4);
      CHECK(st[0].shape() == Shape{1, 4, 16, 16});
      CHECK(st[3].shape() == Shape{1, 32, 64 / os, 64 / os});
      // The same parameter shapes whatever the stride: weights move between the variants.
      ResNetConfig plain;
      plain.widths = {4, 8, 16, 32};
      CHECK(net.parameter_count() == ResNet(plain, rng).parameter_count());
    }
  }
  ResNetConfig c50;
  c50.depth = 50;
  c50.widths = {2, 4, 8, 16};
  c50.output_stride = 8;
  ResNet net50(c50, rng);
  CHECK(net50.out_channels() == 64);
  CHECK(net50(Var(img)).shape() == Shape{1, 64, 8, 8});
  ResNetConfig bad;
  bad.output_stride = 64;
  CHECK_THROWS_AS(ResNet(bad, rng), Error);
}

TEST_CASE("resnet18 (1 input channel, no fc): torchvision names and 11,170,240 parameters") {
  Rng rng(5);
  ResNet net(ResNetConfig{}, rng);
  CHECK(resnet18_params_formula(3) + 512 * 1000 + 1000 == 11689512);  // torchvision's resnet18
  CHECK(resnet18_params_formula(1) == 11170240);
  CHECK(net.parameter_count() == 11170240);
  CHECK(net.out_channels() == 512);
  auto params = net.named_parameters();
  auto buffers = net.named_buffers();
  CHECK(params.size() == 60);
  CHECK(buffers.size() == 60);
  std::vector<std::string> names = names_of(params);
  CHECK(names[0] == "conv1.weight");
  CHECK(names[1] == "bn1.weight");
  CHECK(names[2] == "bn1.bias");
  CHECK(names[3] == "layer1.0.conv1.weight");
  CHECK(names[4] == "layer1.0.bn1.weight");
  CHECK(names[59] == "layer4.1.bn2.bias");
  std::set<std::string> all(names.begin(), names.end());
  for (const char* n : {"layer1.1.conv2.weight", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.bias",
                        "layer3.0.downsample.0.weight", "layer4.0.downsample.1.weight", "layer4.1.conv1.weight"})
    CHECK(all.count(n) == 1);
  CHECK(all.count("layer1.0.downsample.0.weight") == 0);
  std::vector<std::string> bnames = names_of(buffers);
  CHECK(bnames[0] == "bn1.running_mean");
  CHECK(bnames[1] == "bn1.running_var");
  CHECK(bnames[2] == "bn1.num_batches_tracked");
  CHECK(bnames[3] == "layer1.0.bn1.running_mean");
  for (auto& [n, v] : params) {
    if (n == "conv1.weight") CHECK(v.shape() == Shape{64, 1, 7, 7});
    if (n == "layer2.0.conv1.weight") CHECK(v.shape() == Shape{128, 64, 3, 3});
    if (n == "layer4.0.downsample.0.weight") CHECK(v.shape() == Shape{512, 256, 1, 1});
  }
}

TEST_CASE("resnet50 (1 input channel, no fc) has torchvision's parameter count") {
  Rng rng(6);
  ResNetConfig cfg;
  cfg.depth = 50;
  ResNet net(cfg, rng);
  // torchvision resnet50: 25,557,032 with a 3-channel stem and fc (2048*1000 + 1000);
  // a 1-channel stem has 64*2*49 fewer.
  CHECK(net.parameter_count() == 25557032 - 2049000 - 64 * 2 * 49);
  CHECK(net.out_channels() == 2048);
}

TEST_CASE("benchmark backbone of bench/README.md: output stride 16, layer4 stride 1 undilated") {
  Rng rng(7);
  ResNetConfig cfg;
  cfg.output_stride = 16;
  cfg.dilate = false;
  ResNet net(cfg, rng);
  // + 1x1 head without bias to K heatmaps: 11.18 M (K = 22) and 11.17 M (K = 4, 6).
  CHECK(net.parameter_count() + 512 * 22 == 11181504);
  CHECK(net.parameter_count() + 512 * 4 == 11172288);
  for (auto& [n, v] : net.named_parameters())
    if (n == "layer4.0.downsample.0.weight") CHECK(v.shape() == Shape{512, 256, 1, 1});
  CHECK(net(Var(Tensor::zeros({1, 1, 64, 64}))).shape() == Shape{1, 512, 4, 4});
}
