// Tests of the layer ops beyond the op table (tests/ops/op_table.h holds every op's gradient check
// and GPU parity): conv forward against a naive direct convolution, shape errors, module names and
// init, BatchNorm running statistics against hand-computed values, max-pool ties, known values of
// ReLU, average pooling and bilinear resize (PyTorch's), and a Sequential's gradient check.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "layers/activation.h"
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/pooling.h"
#include "layers/resize.h"
#include "layers/sequential.h"
#include "tensor/kernels/conv_geometry.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace sm;

namespace {

Var leaf_make(const Shape& shape, Rng& rng, DType dt = DType::F64, double lo = -1.0, double hi = 1.0,
              bool grad = true) {
  Tensor t = Tensor::empty(shape, dt);
  tensor_fill_uniform(t, rng, lo, hi);
  return Var(t, grad);
}

void check_grad(const std::function<Var()>& f, std::vector<Var> leaves, double atol = 1e-6, double rtol = 1e-5) {
  GradcheckOptions opt;
  opt.atol = atol;
  opt.rtol = rtol;
  GradcheckResult r = gradcheck(f, std::move(leaves), opt);
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.checked > 0);
}

// Direct convolution: y[n,co,oh,ow] = b[co] + Σ x[n,ci,oh*s-p+ki*d, ow*s-p+kj*d] w[co,ci,ki,kj].
Tensor conv_naive(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  const int64_t N = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Co = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t Ho = kernels::conv_out_size(H, kh, p.stride_h, p.pad_h, p.dilation_h);
  const int64_t Wo = kernels::conv_out_size(W, kw, p.stride_w, p.pad_w, p.dilation_w);
  std::vector<double> y(size_t(N * Co * Ho * Wo));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = b.defined() ? b.at({co}) : 0.0;
          for (int64_t ci = 0; ci < Ci; ++ci)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * p.stride_h - p.pad_h + i * p.dilation_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + j * p.dilation_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += x.at({n, ci, ih, iw}) * w.at({co, ci, i, j});
              }
          y[size_t(((n * Co + co) * Ho + oh) * Wo + ow)] = s;
        }
  return Tensor::from_vector({N, Co, Ho, Wo}, y);
}

struct ConvCase {
  int64_t n, cin, cout, h, w, kh, kw;
  Conv2dParams p;
  bool bias;
};

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {2, 2, 3, 5, 6, 3, 3, Conv2dParams::make(1, 1), true},        // 3x3 same
      {3, 2, 3, 7, 6, 3, 3, Conv2dParams::make(2, 1), false},       // stride 2
      {2, 3, 2, 7, 7, 3, 3, Conv2dParams::make(1, 2, 2), true},     // dilation 2
      {1, 2, 4, 9, 8, 3, 3, Conv2dParams::make(2, 3, 3), false},    // stride 2, dilation 3, big padding
      {2, 3, 4, 4, 5, 1, 1, Conv2dParams::make(1, 0), true},        // 1x1 direct (no im2col)
      {2, 3, 4, 5, 5, 1, 1, Conv2dParams::make(2, 0), false},       // 1x1 stride 2 (downsample)
      {2, 2, 3, 6, 7, 2, 3, Conv2dParams{2, 1, 0, 1, 1, 2}, true},  // non-square everything
      {1, 1, 2, 9, 9, 7, 7, Conv2dParams::make(2, 3), false},       // the ResNet stem
  };
  return cases;
}

}  // namespace

TEST_CASE("conv2d forward matches a direct convolution (float32 and float64)") {
  Rng rng(1);
  for (const ConvCase& c : conv_cases()) {
    for (DType dt : {DType::F32, DType::F64}) {
      Var x = leaf_make({c.n, c.cin, c.h, c.w}, rng, dt, -1, 1, false);
      Var w = leaf_make({c.cout, c.cin, c.kh, c.kw}, rng, dt, -1, 1, false);
      Var b = c.bias ? leaf_make({c.cout}, rng, dt, -1, 1, false) : Var();
      Tensor y = conv2d(x, w, b, c.p).value();
      Tensor ref = conv_naive(x.value(), w.value(), b.defined() ? b.value() : Tensor(), c.p);
      REQUIRE(y.shape() == ref.shape());
      CHECK(tensor_max_abs_diff(y, ref) < (dt == DType::F32 ? 1e-5 : 1e-12));
    }
  }
}

TEST_CASE("conv2d forward: batch larger than the thread count and batch 1 agree") {
  Rng rng(2);
  Var x = leaf_make({5, 3, 8, 8}, rng, DType::F32, -1, 1, false);
  Var w = leaf_make({4, 3, 3, 3}, rng, DType::F32, -1, 1, false);
  Tensor y = conv2d(x, w, Var(), Conv2dParams::make(1, 1)).value();
  for (int64_t n = 0; n < 5; ++n) {
    Tensor yn = conv2d(Var(x.value().slice(n, n + 1)), w, Var(), Conv2dParams::make(1, 1)).value();
    CHECK(tensor_max_abs_diff(yn, y.slice(n, n + 1)) == 0.0);
  }
}

TEST_CASE("conv2d forward, batch 1 with many row tiles split over threads, matches a direct convolution") {
  // 64 input channels on a 48x40 map: the im2col tiles hold a few output rows each, so batch-1
  // inference takes the tile-parallel path (layers/conv2d.cpp).
  Rng rng(4);
  for (int64_t stride : {1, 2}) {
    Var x = leaf_make({1, 64, 48, 40}, rng, DType::F32, -1, 1, false);
    Var w = leaf_make({6, 64, 3, 3}, rng, DType::F32, -0.1, 0.1, false);
    Var b = leaf_make({6}, rng, DType::F32, -1, 1, false);
    const Conv2dParams p = Conv2dParams::make(stride, 1);
    Tensor y = conv2d(x, w, b, p).value();
    CHECK(tensor_max_abs_diff(y, conv_naive(x.value(), w.value(), b.value(), p)) < 1e-4);
  }
}

TEST_CASE("conv2d: shape errors name the op and the shapes") {
  Rng rng(4);
  Var x = leaf_make({1, 3, 5, 5}, rng);
  Var w = leaf_make({2, 4, 3, 3}, rng);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Var(), {}), doctest::Contains("conv2d"), Error);
  Var w2 = leaf_make({2, 3, 7, 7}, rng);
  CHECK_THROWS_AS(conv2d(x, w2, Var(), {}), Error);
}

TEST_CASE("Conv2d module: names, shapes, Kaiming fan_out init") {
  Rng rng(5);
  Conv2d conv(16, 64, 3, rng, Conv2dParams::make(1, 1), true);
  auto params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second.shape() == Shape{64, 16, 3, 3});
  CHECK(params[1].first == "bias");
  const double sd = std::sqrt(tensor_sum_squares(conv.weight().value()) / double(conv.weight().value().numel()));
  CHECK(sd == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.05));
  Var y = conv(Var(Tensor::zeros({2, 16, 8, 8})));
  CHECK(y.shape() == Shape{2, 64, 8, 8});
}

TEST_CASE("relu values: 0 at the kink") {
  Tensor y = relu(Var(Tensor::from_vector({4}, std::vector<double>{-1, 0, 2, -3}))).value();
  CHECK(y.to_vector_f64() == std::vector<double>{0, 0, 2, 0});
}

TEST_CASE("BatchNorm2d module: running statistics as PyTorch (unbiased var, momentum 0.1)") {
  BatchNorm2d bn(2);
  auto names = bn.state_dict();
  REQUIRE(names.size() == 5);
  CHECK(names[0].first == "weight");
  CHECK(names[1].first == "bias");
  CHECK(names[2].first == "running_mean");
  CHECK(names[3].first == "running_var");
  CHECK(names[4].first == "num_batches_tracked");
  CHECK(bn.num_batches_tracked().value().dim() == 0);
  // x (2, 2, 1, 2): channel 0 holds {1, 2, 3, 6} (mean 3, biased var 3.5, unbiased 14/3),
  // channel 1 holds {-1, 1, -1, 1} (mean 0, biased var 1, unbiased 4/3).
  Tensor x = Tensor::from_vector({2, 2, 1, 2}, std::vector<float>{1, 2, -1, 1, 3, 6, -1, 1});
  Var y = bn(Var(x));
  std::vector<double> rm = bn.running_mean().value().to_vector_f64(), rv = bn.running_var().value().to_vector_f64();
  CHECK(rm[0] == doctest::Approx(0.3));
  CHECK(rm[1] == doctest::Approx(0.0));
  CHECK(rv[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0));
  CHECK(rv[1] == doctest::Approx(0.9 + 0.1 * 4.0 / 3.0));
  CHECK(bn.num_batches_tracked().value().item() == 1.0);
  // Normalised with the biased variance: (1 - 3)/sqrt(3.5 + 1e-5).
  CHECK(y.value().at({0, 0, 0, 0}) == doctest::Approx(-2.0 / std::sqrt(3.5 + 1e-5)));
  CHECK(y.value().at({1, 1, 0, 1}) == doctest::Approx(1.0 / std::sqrt(1.0 + 1e-5)));
  // Second step accumulates: rm0 = 0.9*0.3 + 0.1*3.
  bn(Var(x));
  CHECK(bn.running_mean().value().to_vector_f64()[0] == doctest::Approx(0.57));
  CHECK(bn.num_batches_tracked().value().item() == 2.0);
  // Eval uses the running statistics and leaves them alone.
  bn.eval();
  Var ye = bn(Var(x));
  const double rm0 = bn.running_mean().value().to_vector_f64()[0], rv0 = bn.running_var().value().to_vector_f64()[0];
  CHECK(ye.value().at({0, 0, 0, 0}) == doctest::Approx((1.0 - rm0) / std::sqrt(rv0 + 1e-5)));
  CHECK(bn.num_batches_tracked().value().item() == 2.0);
  CHECK(bn.running_mean().value().to_vector_f64()[0] == doctest::Approx(0.57));
}

TEST_CASE("max_pool2d: output shape with padding; ties go to the first maximum") {
  Var x(Tensor::zeros({2, 2, 7, 6}, DType::F64));
  CHECK(max_pool2d(x, {3, 2, 1}).shape() == Shape{2, 2, 4, 3});
  CHECK(max_pool2d(x, {2, 0, 0}).shape() == Shape{2, 2, 3, 3});  // stride 0 = kernel

  Var c(Tensor::full({1, 1, 2, 2}, 5.0, DType::F64), true);
  Var y = max_pool2d(c, {2, 2, 0});
  backward(y, Tensor::full({1, 1, 1, 1}, 1.0, DType::F64));
  CHECK(c.grad().to_vector_f64() == std::vector<double>{1, 0, 0, 0});
}

TEST_CASE("global_avg_pool value") {
  Tensor t = Tensor::from_vector({1, 1, 2, 2}, std::vector<double>{1, 2, 3, 6});
  CHECK(global_avg_pool(Var(t)).value().item() == doctest::Approx(3.0));
}

TEST_CASE("Linear module: weight shape (out, in)") {
  Rng rng(10);
  Linear lin(5, 3, rng);
  CHECK(lin.named_parameters()[0].second.shape() == Shape{3, 5});
}

TEST_CASE("resize_bilinear matches F.interpolate(align_corners=False)") {
  // F.interpolate(torch.arange(4.).view(1,1,2,2), size=(4,4), mode="bilinear", align_corners=False)
  Tensor t = Tensor::from_vector({1, 1, 2, 2}, std::vector<double>{0, 1, 2, 3});
  std::vector<double> want{0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3};
  std::vector<double> got = resize_bilinear(Var(t), 4, 4).value().to_vector_f64();
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]));
  // Down by 2 with align_corners=False averages 2x2 blocks.
  Tensor u = Tensor::from_vector({1, 1, 2, 2}, std::vector<double>{1, 2, 3, 4});
  CHECK(resize_bilinear(Var(u), 1, 1).value().item() == doctest::Approx(2.5));
}

TEST_CASE("Sequential runs children in order and names them 0, 1, ...") {
  Rng rng(13);
  Sequential seq;
  seq.push_back(std::make_shared<Conv2d>(2, 3, 3, rng, Conv2dParams::make(1, 1), false));
  seq.push_back(std::make_shared<BatchNorm2d>(3));
  seq.push_back(std::make_shared<ReLU>());
  auto names = seq.named_parameters();
  REQUIRE(names.size() == 3);
  CHECK(names[0].first == "0.weight");
  CHECK(names[1].first == "1.weight");
  CHECK(names[2].first == "1.bias");
  seq.to_dtype(DType::F64);
  Var x = leaf_make({2, 2, 4, 4}, rng);
  std::vector<Var> leaves{x};
  for (auto& [n, v] : names) leaves.push_back(v);
  check_grad([&] { return seq(x); }, leaves, 1e-5, 1e-4);
}
