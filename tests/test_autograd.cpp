// Autograd graph: accumulation contract, reused nodes, no-grad mode, inference-only ops,
// and the gradient checker's own ability to fail.
#include <doctest/doctest.h>

#include "autograd/gradcheck.h"
#include "layers/dsnt.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace sm;

namespace {
// y = x * x elementwise, a tiny op written in the project's style for these tests.
Var square(const Var& x) {
  Tensor y = tensor_mul(x.value(), x.value());
  return var_make_result(y, {x}, "square", [x](const Tensor& g) mutable {
    x.grad_accumulate(tensor_scale(tensor_mul(g, x.value()), 2.0));
  });
}
Var plus(const Var& a, const Var& b) {
  return var_make_result(tensor_add(a.value(), b.value()), {a, b}, "plus", [a, b](const Tensor& g) mutable {
    a.grad_accumulate(g);
    b.grad_accumulate(g);
  });
}
// A deliberately wrong backward (assigns instead of adding): gradcheck must catch it.
Var square_assigning(const Var& x) {
  Tensor y = tensor_mul(x.value(), x.value());
  return var_make_result(y, {x}, "square_assigning", [xv = Var(x)](const Tensor& g) mutable {
    xv.grad() = tensor_scale(tensor_mul(g, xv.value()), 2.0);
  });
}
}  // namespace

TEST_CASE("a reused node is visited once and its gradient sums over paths") {
  Var x(Tensor::from_vector({3}, std::vector<double>{1, 2, 3}), true);
  Var s = square(x);      // s used twice below
  Var y = plus(s, s);     // y = 2 x²
  Var z = plus(y, s);     // z = 3 x²
  backward(z, Tensor::full({3}, 1.0, DType::F64));
  std::vector<double> g = x.grad().to_vector_f64();
  CHECK(g[0] == 6.0);
  CHECK(g[1] == 12.0);
  CHECK(g[2] == 18.0);
}

TEST_CASE("a deep chain neither recurses in backward nor when it is destroyed") {
  Var x(Tensor::from_vector({1}, std::vector<double>{1.0}), true);
  Var y = x;
  for (int i = 0; i < 300000; ++i) y = plus(y, Var(Tensor::from_vector({1}, std::vector<double>{0.0})));
  backward(y);
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("gradients accumulate across backward calls") {
  Var x(Tensor::from_vector({2}, std::vector<double>{1, 2}), true);
  backward(square(x), Tensor::full({2}, 1.0, DType::F64));
  backward(square(x), Tensor::full({2}, 1.0, DType::F64));
  CHECK(x.grad().to_vector_f64()[1] == 8.0);
  x.grad_zero();
  CHECK(x.grad().to_vector_f64()[1] == 0.0);
}

TEST_CASE("no-grad mode records nothing") {
  Var x(Tensor::from_vector({2}, std::vector<double>{1, 2}), true);
  {
    NoGradGuard ng;
    Var y = square(x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(square(x).requires_grad());
}

TEST_CASE("an inference-only op fails at once with its name when a graph is built") {
  Var x(Tensor::from_vector({2}, std::vector<double>{1, 2}), true);
  auto infer_only = [](const Var& v) { return var_make_result(v.value().clone(), {v}, "argmax_decode", nullptr); };
  CHECK_THROWS_WITH_AS(infer_only(x), doctest::Contains("argmax_decode"), Error);
  NoGradGuard ng;
  CHECK_NOTHROW(infer_only(x));
}

TEST_CASE("gradcheck passes a correct op and fails an op that assigns instead of adding") {
  Rng rng(1);
  Tensor t = Tensor::empty({5}, DType::F64);
  tensor_fill_uniform(t, rng, -1, 1);
  Var x(t, true, "x");
  CHECK(gradcheck([&] { return square(x); }, {x}).ok);
  Var x2(t.clone(), true, "x2");
  GradcheckResult bad = gradcheck([&] { return square_assigning(x2); }, {x2});
  CHECK_FALSE(bad.ok);
  CHECK(bad.report.find("x2") != std::string::npos);
}

TEST_CASE("backward checks the seed shape") {
  Var x(Tensor::from_vector({2}, std::vector<double>{1, 2}), true);
  CHECK_THROWS_AS(backward(square(x)), Error);  // two elements, no seed
}
