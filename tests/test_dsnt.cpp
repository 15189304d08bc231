// DSNT: the reference values of method.md §4 (from the dsntnn library's own tests) as exact
// unit tests, shape errors and float32/float64 agreement. The gradient checks of every DSNT op and
// loss are the op table's (tests/ops/op_table.h, run by tests/test_ops.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include "layers/dsnt.h"
#include "layers/dsnt_losses.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace sm;

namespace {
Var leaf(const Shape& s, Rng& rng, double lo = -1, double hi = 1, const char* name = "x") {
  Tensor t = Tensor::empty(s, DType::F64);
  tensor_fill_uniform(t, rng, lo, hi);
  return Var(t, true, name);
}
Tensor random_targets(const Shape& s, Rng& rng) {
  Tensor t = Tensor::empty(s, DType::F64);
  tensor_fill_uniform(t, rng, -0.8, 0.8);
  return t;
}
}  // namespace

TEST_CASE("flat softmax reference values") {
  Var z(Tensor::from_vector({1, 1, 2, 2}, std::vector<float>{10, 1, 5, 2}));
  std::vector<float> p = flat_softmax(z).value().to_vector_f32();
  const float want[4] = {0.99285460f, 0.00012253f, 0.00668980f, 0.00033307f};
  for (int k = 0; k < 4; ++k) CHECK(p[size_t(k)] == doctest::Approx(want[k]).epsilon(1e-6));
}

TEST_CASE("softmax is per channel, never across channels or the batch") {
  Rng rng(3);
  Var z = leaf({2, 3, 4, 5}, rng, -3, 3);
  std::vector<double> p = flat_softmax(z).value().to_vector_f64();
  for (int ch = 0; ch < 6; ++ch) {
    double s = 0;
    for (int k = 0; k < 20; ++k) s += p[size_t(ch * 20 + k)];
    CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("DSNT reference map: coordinates and MSE gradient") {
  std::vector<float> m(25, 0.f);
  m[2 * 5 + 3] = 0.6f;
  m[1 * 5 + 3] = m[2 * 5 + 2] = m[2 * 5 + 4] = m[3 * 5 + 3] = 0.1f;
  Var map(Tensor::from_vector({1, 1, 5, 5}, m), true, "map");
  Var mu = dsnt(map);
  std::vector<float> c = mu.value().to_vector_f32();
  CHECK(c[0] == doctest::Approx(0.4).epsilon(1e-6));
  CHECK(std::fabs(c[1]) < 1e-6);
  CHECK(dsnt_denormalise(c[0], 5) == doctest::Approx(3.0).epsilon(1e-6));
  CHECK(dsnt_denormalise(c[1], 5) == doctest::Approx(2.0).epsilon(1e-6));

  Var loss = mse_loss(mu, Tensor::from_vector({1, 1, 2}, std::vector<float>{0.5f, 0.5f}));
  backward(loss);
  const double want[5][5] = {{0.48, 0.44, 0.40, 0.36, 0.32},
                             {0.28, 0.24, 0.20, 0.16, 0.12},
                             {0.08, 0.04, 0.00, -0.04, -0.08},
                             {-0.12, -0.16, -0.20, -0.24, -0.28},
                             {-0.32, -0.36, -0.40, -0.44, -0.48}};
  std::vector<float> g = map.grad().to_vector_f32();
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) CHECK(g[size_t(i * 5 + j)] == doctest::Approx(want[i][j]).epsilon(1e-5).scale(1));
}

TEST_CASE("DSNT grid: W = 4 gives -0.75, -0.25, 0.25, 0.75") {
  for (int j = 0; j < 4; ++j) {
    std::vector<float> m(4, 0.f);
    m[size_t(j)] = 1.f;
    Var map(Tensor::from_vector({1, 1, 1, 4}, m));
    CHECK(dsnt(map).value().to_vector_f32()[0] == doctest::Approx(-0.75 + 0.5 * j));
  }
}

TEST_CASE("Gaussian targets reference values") {
  Tensor c0 = Tensor::from_vector({1, 1, 2}, std::vector<double>{0, 0});
  std::vector<double> q = gaussian_heatmaps(c0, 5, 5, 1.0).to_vector_f64();
  const double row0[5] = {0.002969, 0.013306, 0.021938, 0.013306, 0.002969};
  for (int j = 0; j < 5; ++j) CHECK(q[size_t(j)] == doctest::Approx(row0[j]).epsilon(2e-4));
  CHECK(q[12] == doctest::Approx(0.162103).epsilon(1e-5));

  Tensor c1 = Tensor::from_vector({1, 1, 2}, std::vector<double>{-1, -1});
  std::vector<double> q1 = gaussian_heatmaps(c1, 3, 5, 1.0).to_vector_f64();
  const double want[5] = {0.496683, 0.182719, 0.024728, 0.001231, 0.000023};
  for (int j = 0; j < 5; ++j) CHECK(std::fabs(q1[size_t(j)] - want[j]) <= 5.0001e-7);  // 6 decimals given
}

TEST_CASE("variance regulariser reference value") {
  std::vector<double> m(16, 0.0);
  m[1 * 4 + 1] = 0.6;
  m[0 * 4 + 1] = m[2 * 4 + 1] = m[1 * 4 + 0] = m[1 * 4 + 2] = 0.1;
  Var map(Tensor::from_vector({1, 1, 4, 4}, m));
  CHECK(variance_regularizer(map, 2.0).value().item() == doctest::Approx(28.88).epsilon(1e-9));
}

TEST_CASE("JS is zero for P == Q and positive otherwise; KL likewise") {
  Tensor t = Tensor::from_vector({1, 1, 2}, std::vector<double>{0.1, -0.2});
  Var q(gaussian_heatmaps(t, 8, 8, 1.0));
  CHECK(std::fabs(js_regularizer(q, t, 1.0).value().item()) < 1e-12);
  CHECK(std::fabs(kl_regularizer(q, t, 1.0).value().item()) < 1e-12);
  Tensor t2 = Tensor::from_vector({1, 1, 2}, std::vector<double>{-0.5, 0.5});
  CHECK(js_regularizer(q, t2, 1.0).value().item() > 0.1);
  CHECK(js_regularizer(q, t2, 1.0).value().item() < std::log(2.0) + 1e-12);  // JS is bounded by ln 2
}

TEST_CASE("Euclidean loss: mask averages over visible landmarks only, zero-distance gradient is 0") {
  Var mu(Tensor::from_vector({1, 3, 2}, std::vector<double>{0, 0, 0.3, 0.4, 1, 1}), true, "mu");
  Tensor t = Tensor::from_vector({1, 3, 2}, std::vector<double>{0, 0, 0, 0, -1, -1});
  Tensor mask = Tensor::from_vector({1, 3}, std::vector<double>{1, 1, 0});
  Var l = euclidean_loss(mu, t, mask);
  CHECK(l.value().item() == doctest::Approx(0.25));  // (0 + 0.5) / 2 visible
  backward(l);
  std::vector<double> g = mu.grad().to_vector_f64();
  CHECK(g[0] == 0.0);
  CHECK(g[1] == 0.0);
  CHECK(g[2] == doctest::Approx(0.5 * 0.6));
  CHECK(g[3] == doctest::Approx(0.5 * 0.8));
  CHECK(g[4] == 0.0);
  Tensor none = Tensor::from_vector({1, 3}, std::vector<double>{0, 0, 0});
  CHECK(euclidean_loss(mu, t, none).value().item() == 0.0);
}

TEST_CASE("bad shapes give clear errors") {
  Var z(Tensor::zeros({2, 3, 4}));
  CHECK_THROWS_WITH_AS(flat_softmax(z), doctest::Contains("(N, C, H, W)"), Error);
  Var mu(Tensor::zeros({1, 2, 2}));
  CHECK_THROWS_WITH_AS(euclidean_loss(mu, Tensor::zeros({1, 3, 2})), doctest::Contains("target"), Error);
  CHECK_THROWS_AS(euclidean_loss(mu, Tensor::zeros({1, 2, 2}), Tensor::zeros({2, 2})), Error);
}

TEST_CASE("float32 and float64 agree") {
  Rng rng(5);
  Var z64 = leaf({1, 2, 6, 6}, rng, -3, 3);
  Var z32(z64.value().to(DType::F32), true);
  Tensor t = random_targets({1, 2, 2}, rng);
  double a = (js_regularizer(flat_softmax(z64), t, 1.0).value().item());
  double b = (js_regularizer(flat_softmax(z32), t.to(DType::F32), 1.0).value().item());
  CHECK(a == doctest::Approx(b).epsilon(1e-5));
}
