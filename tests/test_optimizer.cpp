// Optimizers, schedules, clipping and ParameterBuffer views. Expected values are torch 1.13's
// (torch.optim.*, 3 steps on a 4-vector with fixed gradients; tests must not need Python, so the
// numbers are pasted here; they were produced by the script in the comment at the bottom).
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/var.h"
#include "layers/parameter_buffer.h"
#include "tensor/ops.h"
#include "train/optim/lr_schedule.h"
#include "train/optim/optimizer.h"

using namespace sm;

namespace {

const std::vector<std::vector<double>> kGrads = {{0.5, -1.0, 0.25, 2.0}, {0.4, -0.8, -0.3, 1.5}, {-0.2, -0.6, 0.1, 1.0}};

// Runs 3 steps of the optimizer built by `make` on p0 = [1, -2, 3, 0.5] and returns p.
template <class Make> std::vector<double> run3(DType dtype, Make make) {
  Var p(Tensor::from_vector({4}, std::vector<double>{1.0, -2.0, 3.0, 0.5}).to(dtype), true, "p");
  ParameterBuffer buf({{"p", p}});
  auto opt = make(buf);
  for (const auto& g : kGrads) {
    p.grad().copy_(Tensor::from_vector({4}, g).to(dtype));
    opt->step();
  }
  CHECK(opt->step_count() == 3);
  return p.value().to_vector_f64();
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i])));
}

template <class Make> void check_both(Make make, const std::vector<double>& want64, const std::vector<double>& want32) {
  check_close(run3(DType::F64, make), want64, 1e-14);
  check_close(run3(DType::F32, make), want32, 2e-7);
}

}  // namespace

TEST_CASE("SGD matches torch.optim.SGD") {
  auto sgd = [](SgdConfig c) { return [c](ParameterBuffer& b) { return std::make_unique<Sgd>(b, c); }; };
  check_both(sgd({0.1, 0.9, 0.0, 0.01, false}), {0.803124749, -1.506249498, 2.962499372, -0.4288928005000001},
             {0.8031247854232788, -1.5062495470046997, 2.9624991416931152, -0.4288928508758545});
  check_both(sgd({0.1, 0.9, 0.0, 0.0, true}), {0.7576499999999999, -1.3253, 2.976325, -0.7843},
             {0.7576499581336975, -1.325299859046936, 2.976325273513794, -0.7842999696731567});
  check_both(sgd({0.1, 0.5, 0.3, 0.0, false}), {0.8845, -1.6989999999999998, 2.9807500000000005, -0.0775},
             {0.8845000267028809, -1.6990000009536743, 2.98075008392334, -0.07749997824430466});
  check_both(sgd({0.1, 0.0, 0.0, 0.0, false}), {0.9299999999999999, -1.7599999999999998, 2.995, 0.04999999999999996},
             {0.9299999475479126, -1.7599998712539673, 2.994999885559082, 0.05000000447034836});
  Var p(Tensor::zeros({2}), true);
  ParameterBuffer b({{"p", p}});
  CHECK_THROWS_WITH_AS(Sgd(b, {0.1, 0.0, 0.0, 0.0, true}), doctest::Contains("Nesterov"), Error);
}

TEST_CASE("Adam and AdamW match torch.optim") {
  AdamConfig adam;
  adam.lr = 0.1;
  adam.weight_decay = 0.01;
  check_both([&](ParameterBuffer& b) { return std::make_unique<Adam>(b, adam); },
             {0.745884596210835, -1.7047795078233394, 2.886197078447476, 0.20748031426994223},
             {0.7458846569061279, -1.7047793865203857, 2.886197090148926, 0.2074803113937378});
  AdamConfig adamw;
  adamw.lr = 0.1;
  adamw.weight_decay = 0.1;
  check_both([&](ParameterBuffer& b) { return std::make_unique<AdamW>(b, adamw); },
             {0.7206208454808232, -1.648485900311496, 2.821884842572213, 0.19560992509961933},
             {0.72062087059021, -1.6484858989715576, 2.821885108947754, 0.1956099271774292});
}

TEST_CASE("Adam first step by hand: p -= lr * sign(g) (m_hat / sqrt(v_hat) = g / |g|)") {
  Var p(Tensor::from_vector({2}, std::vector<double>{1.0, 1.0}), true);
  ParameterBuffer b({{"p", p}});
  Adam opt(b, AdamConfig{});
  p.grad().copy_(Tensor::from_vector({2}, std::vector<double>{3.0, -0.5}));
  opt.step();
  // m = 0.1 g, v = 0.001 g^2; step_size = 1e-3 / 0.1; denom = |g| sqrt(0.001) / sqrt(0.001) + 1e-8.
  CHECK(p.value().at({0}) == doctest::Approx(1.0 - 1e-3 * 3.0 / (3.0 + 1e-8)).epsilon(1e-14));
  CHECK(p.value().at({1}) == doctest::Approx(1.0 + 1e-3 * 0.5 / (0.5 + 1e-8)).epsilon(1e-14));
}

TEST_CASE("RMSprop matches torch.optim.RMSprop") {
  auto rms = [](RmspropConfig c) { return [c](ParameterBuffer& b) { return std::make_unique<Rmsprop>(b, c); }; };
  RmspropConfig plain;
  check_both(rms(plain), {0.8673736548594316, -1.7946310397730147, 2.952007848014968, 0.3024037094648715},
             {0.8673737049102783, -1.794631004333496, 2.952008008956909, 0.3024037182331085});
  RmspropConfig c{0.01, 0.9, 1e-8, 0.01, 0.5, true};
  check_both(rms(c), {0.9176648606529141, -1.8908204372899675, 2.964724891957295, 0.3944219000414021},
             {0.9176648855209351, -1.8908205032348633, 2.9647250175476074, 0.39442190527915955});
}

TEST_CASE("gradient clipping by global norm matches clip_grad_norm_") {
  Var p(Tensor::from_vector({2}, std::vector<double>{1.0, 2.0}), true, "p");
  Var q(Tensor::from_vector({1}, std::vector<double>{3.0}), true, "q");
  ParameterBuffer b({{"p", p}, {"q", q}});
  p.grad().copy_(Tensor::from_vector({2}, std::vector<double>{3.0, 4.0}));
  q.grad().copy_(Tensor::from_vector({1}, std::vector<double>{12.0}));
  CHECK(grad_clip_norm(b, 100.0) == 13.0);  // sqrt(9 + 16 + 144); no clipping
  CHECK(p.grad().at({0}) == 3.0);
  CHECK(grad_clip_norm(b, 6.5) == 13.0);
  check_close(p.grad().to_vector_f64(), {1.4999998846153937, 1.9999998461538582}, 1e-15);
  check_close(q.grad().to_vector_f64(), {5.999999538461575}, 1e-15);
  CHECK(grad_norm(b) == doctest::Approx(6.5).epsilon(1e-6));
}

TEST_CASE("learning-rate schedules") {
  LrSchedule s;
  s.base_lr = 0.1;
  CHECK(s.lr_at(12345) == 0.1);
  s.kind = LrSchedule::Kind::Step;
  s.step_size = 10;
  s.gamma = 0.5;
  CHECK(s.lr_at(9) == 0.1);
  CHECK(s.lr_at(10) == 0.05);
  CHECK(s.lr_at(25) == doctest::Approx(0.025).epsilon(1e-15));
  // Cosine: torch's CosineAnnealingLR(T_max=10, eta_min=0.001) at steps 0..10.
  s.kind = LrSchedule::Kind::Cosine;
  s.total_steps = 10;
  s.min_lr = 0.001;
  const double torch_cos[] = {0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742, 0.0657963412215599,
                              0.0505, 0.03520365877844011, 0.02140463001152259, 0.010453658778440109,
                              0.0034227024433899004, 0.001};
  for (int i = 0; i <= 10; ++i) CHECK(s.lr_at(i) == doctest::Approx(torch_cos[i]).epsilon(1e-13));
  CHECK(s.lr_at(50) == doctest::Approx(0.001).epsilon(1e-15));  // held at the minimum past the end
  // Linear warm-up over 4 steps from 0.25 * base, then cosine over the remaining 10.
  s.warmup_steps = 4;
  s.warmup_start_factor = 0.25;
  s.total_steps = 14;
  CHECK(s.lr_at(0) == doctest::Approx(0.025));
  CHECK(s.lr_at(2) == doctest::Approx(0.1 * (0.25 + 0.75 * 0.5)));
  CHECK(s.lr_at(4) == doctest::Approx(0.1));
  CHECK(s.lr_at(9) == doctest::Approx(0.0505));
  CHECK(s.lr_at(14) == doctest::Approx(0.001));
  // Warm-up composed with step decay.
  s.kind = LrSchedule::Kind::Step;
  CHECK(s.lr_at(3) == doctest::Approx(0.1 * (0.25 + 0.75 * 0.75)));
  CHECK(s.lr_at(13) == doctest::Approx(0.1));
  CHECK(s.lr_at(14) == doctest::Approx(0.05));
}

TEST_CASE("ParameterBuffer: values and grads are views; backward accumulates into the flat buffer") {
  Var a(Tensor::from_vector({2, 2}, std::vector<float>{1, 2, 3, 4}), true, "a");
  Var b(Tensor::from_vector({3}, std::vector<float>{5, 6, 7}), true, "b");
  Var c(Tensor::from_vector({1}, std::vector<double>{8}), true, "c");  // another dtype: another group
  ParameterBuffer buf({{"a", a}, {"b", b}, {"c", c}});
  REQUIRE(buf.groups().size() == 2);
  const ParameterGroup& g = buf.groups()[0];
  CHECK(g.values.numel() == 7);
  CHECK(g.values.to_vector_f32() == std::vector<float>{1, 2, 3, 4, 5, 6, 7});
  CHECK(a.value().storage() == g.values.storage());
  CHECK(b.value().offset() == 4);
  CHECK(buf.views_intact());
  CHECK(buf.numel() == 8);

  // Two accumulations (what backward does for a parameter used twice) land in the flat grads.
  a.grad_accumulate(Tensor::full({2, 2}, 1.0));
  a.grad_accumulate(Tensor::full({2, 2}, 2.0));
  b.grad_accumulate(Tensor::from_vector({3}, std::vector<float>{1, 1, 1}));
  CHECK(buf.views_intact());
  CHECK(g.grads.to_vector_f32() == std::vector<float>{3, 3, 3, 3, 1, 1, 1});
  // A real backward pass through a graph.
  Var y = var_make_result(tensor_scale(b.value(), 2.0), {b}, "twice", [b](const Tensor& go) mutable {
    b.grad_accumulate(tensor_scale(go, 2.0));
  });
  backward(y, Tensor::full({3}, 1.0));
  CHECK(g.grads.to_vector_f32() == std::vector<float>{3, 3, 3, 3, 3, 3, 3});
  CHECK(buf.views_intact());

  // An optimizer step writes through the flat buffer into the Vars' values.
  Sgd sgd(buf, {0.5, 0.0, 0.0, 0.0, false});
  sgd.step();
  CHECK(a.value().to_vector_f32() == std::vector<float>{-0.5f, 0.5f, 1.5f, 2.5f});
  CHECK(b.value().to_vector_f32() == std::vector<float>{3.5f, 4.5f, 5.5f});
  sgd.zero_grad();
  CHECK(tensor_sum_squares(g.grads) == 0.0);

  // grad_release + accumulate allocates a fresh grad; grads_gather puts it back into the buffer.
  a.grad_release();
  a.grad_accumulate(Tensor::full({2, 2}, 7.0));
  CHECK_FALSE(buf.views_intact());
  buf.grads_gather();
  CHECK(buf.views_intact());
  CHECK(g.grads.to_vector_f32() == std::vector<float>{7, 7, 7, 7, 0, 0, 0});

  // Named views carry PyTorch-style names.
  auto named = buf.named_values();
  REQUIRE(named.size() == 3);
  CHECK(named[1].first == "b");
  CHECK(named[1].second.shape() == Shape{3});

  // Replacing a value tensor breaks the buffer: the optimizer refuses, naming the parameter.
  b.value_mut() = b.value().clone();
  CHECK_THROWS_WITH_AS(sgd.step(), doctest::Contains("'b'"), Error);
}

TEST_CASE("optimizer state: named views, export and restore") {
  Var p(Tensor::from_vector({3}, std::vector<float>{1, 2, 3}), true, "w");
  ParameterBuffer buf({{"layer1.0.conv1.weight", p}});
  Adam opt(buf, AdamConfig{});
  p.grad().fill_(0.5);
  opt.step();
  auto st = opt.state_named();
  REQUIRE(st.size() == 3);
  CHECK(st[0].first == "adam.step");
  CHECK(st[0].second.item() == 1.0);
  CHECK(st[1].first == "adam.exp_avg.layer1.0.conv1.weight");
  CHECK(st[2].first == "adam.exp_avg_sq.layer1.0.conv1.weight");
  CHECK(st[1].second.to_vector_f32() == std::vector<float>(3, 0.05f));
}

// Reference values: torch 1.13, e.g.
//   p = torch.tensor([1., -2., 3., .5], dtype=torch.float64, requires_grad=True)
//   opt = torch.optim.Adam([p], lr=0.1, weight_decay=0.01)
//   for g in G: p.grad = torch.tensor(g, dtype=torch.float64); opt.step()
