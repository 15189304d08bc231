// SyncBatchNorm (layers/batchnorm2d_sync.h): the finite-difference gradient check of its
// backward (float64, one process: the reducer sums over itself), agreement with the one-process
// BatchNorm2d kernel, and two threads standing in for two ranks, each holding a slice of one
// batch, that must compute what one process computes on the whole batch (y, dx, the running
// statistics, and dγ, dβ once summed over the two). The same checks for the path GPU ranks take
// (batchnorm2d_sync_kernels: composed from the one-process kernels), run here on the CPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "autograd/gradcheck.h"
#include "layers/batchnorm2d.h"
#include "layers/batchnorm2d_sync.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace sm;

namespace {

// One process: Σ over one rank is the values themselves.
struct SoloReducer final : BatchStatsReducer {
  int calls = 0;
  void sum(double*, int64_t) override { ++calls; }
};

// `ranks` threads of one process as ranks: each deposits its buffer, the last to arrive sums
// them in rank order, and every thread leaves with the sum (a barrier with a generation count).
class ThreadRanks {
 public:
  explicit ThreadRanks(int ranks) : ranks_(ranks), slots_(size_t(ranks)) {}
  void sum(int rank, double* v, int64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    slots_[size_t(rank)].assign(v, v + n);
    const uint64_t gen = generation_;
    if (++arrived_ == ranks_) {
      total_.assign(size_t(n), 0.0);
      for (const auto& s : slots_)
        for (int64_t i = 0; i < n; ++i) total_[size_t(i)] += s[size_t(i)];
      arrived_ = 0, ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
    std::copy(total_.begin(), total_.end(), v);
  }

 private:
  int ranks_, arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::vector<double>> slots_;
  std::vector<double> total_;
  std::mutex mu_;
  std::condition_variable cv_;
};

struct ThreadRankReducer final : BatchStatsReducer {
  ThreadRanks* ranks;
  int rank;
  ThreadRankReducer(ThreadRanks* r, int k) : ranks(r), rank(k) {}
  void sum(double* v, int64_t n) override { ranks->sum(rank, v, n); }
};

Var leaf(const Shape& shape, Rng& rng, double lo, double hi) {
  Tensor t = Tensor::empty(shape, DType::F64);
  tensor_fill_uniform(t, rng, lo, hi);
  return Var(t, true);
}

// Rows [first, first + count) of an (N, ...) tensor, as a copy.
Tensor rows(const Tensor& t, int64_t first, int64_t count) {
  Shape s = t.shape();
  const int64_t row = t.numel() / s[0];
  s[0] = count;
  Tensor out = Tensor::empty(s, DType::F64);
  std::copy(t.f64() + first * row, t.f64() + (first + count) * row, out.f64());
  return out;
}

// Backpropagates L = Σ y·r (the seed ∂L/∂y = r).
void backward_dot(const Var& y, const Tensor& r) { backward(y, r); }

}  // namespace

TEST_CASE("batchnorm2d_sync: finite-difference gradient check (float64, one process), affine and not, both paths") {
  Rng rng(11);
  SoloReducer solo;
  for (bool affine : {true, false})
  for (bool composed : {false, true}) {
    CAPTURE(affine);
    CAPTURE(composed);
    Var x = leaf({3, 2, 3, 2}, rng, -2, 2), w = leaf({2}, rng, 0.5, 1.5), b = leaf({2}, rng, -0.5, 0.5);
    std::vector<Var> leaves{x};
    if (affine) leaves.push_back(w), leaves.push_back(b);
    auto f = [&] {
      return composed ? batchnorm2d_sync_kernels(x, affine ? w : Var(), affine ? b : Var(), nullptr, nullptr, {}, solo)
                      : batchnorm2d_sync(x, affine ? w : Var(), affine ? b : Var(), nullptr, nullptr, {}, solo);
    };
    GradcheckResult r = gradcheck(f, leaves);
    INFO(r.report);
    CHECK(r.ok);
    CHECK(r.checked > 0);
  }
  CHECK(solo.calls > 0);
}

TEST_CASE("batchnorm2d_sync on one process equals the BatchNorm2d kernel: y, dx, dγ, dβ, running statistics") {
  Rng rng(12);
  Var x = leaf({4, 3, 5, 4}, rng, -3, 3), w = leaf({3}, rng, 0.5, 1.5), b = leaf({3}, rng, -0.5, 0.5);
  Tensor r = Tensor::empty({4, 3, 5, 4}, DType::F64);
  tensor_fill_uniform(r, rng, -1, 1);
  Tensor rm1 = Tensor::zeros({3}, DType::F64), rv1 = Tensor::full({3}, 1.0, DType::F64);
  Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
  SoloReducer solo;
  Var y1 = batchnorm2d(x, w, b, &rm1, &rv1, true);
  backward_dot(y1, r);
  const std::vector<double> dx1 = x.grad().to_vector_f64(), dw1 = w.grad().to_vector_f64(), db1 = b.grad().to_vector_f64();
  x.grad_zero(), w.grad_zero(), b.grad_zero();
  Var y2;
  {
    BatchStatsReducerScope scope(&solo);  // batchnorm2d() itself takes the synchronised path
    y2 = batchnorm2d(x, w, b, &rm2, &rv2, true);
  }
  CHECK(solo.calls == 2);
  backward_dot(y2, r);
  auto close = [](const std::vector<double>& a, const std::vector<double>& e) {
    REQUIRE(a.size() == e.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(e[i]).epsilon(1e-12).scale(1.0));
  };
  close(y2.value().to_vector_f64(), y1.value().to_vector_f64());
  close(x.grad().to_vector_f64(), dx1);
  close(w.grad().to_vector_f64(), dw1);
  close(b.grad().to_vector_f64(), db1);
  close(rm2.to_vector_f64(), rm1.to_vector_f64());
  close(rv2.to_vector_f64(), rv1.to_vector_f64());
}

TEST_CASE("batchnorm2d_sync: two ranks (threads) with slices 2 + 3 of a batch of 5 compute what one process computes") {
  for (bool composed : {false, true}) {
  CAPTURE(composed);  // false: the CPU loops; true: the kernel composition GPU ranks run
  Rng rng(13);
  const int64_t n = 5, c = 3;
  Tensor xs = Tensor::empty({n, c, 4, 3}, DType::F64), r = Tensor::empty({n, c, 4, 3}, DType::F64);
  tensor_fill_uniform(xs, rng, -2, 4);
  tensor_fill_uniform(r, rng, -1, 1);
  Var w = leaf({c}, rng, 0.5, 1.5), b = leaf({c}, rng, -0.5, 0.5);
  // One process, the whole batch.
  Var x = Var(xs.clone(), true);
  Tensor rm = Tensor::zeros({c}, DType::F64), rv = Tensor::full({c}, 1.0, DType::F64);
  Var y = batchnorm2d(x, w, b, &rm, &rv, true);
  backward_dot(y, r);
  const std::vector<double> y_one = y.value().to_vector_f64(), dx_one = x.grad().to_vector_f64();
  const std::vector<double> dw_one = w.grad().to_vector_f64(), db_one = b.grad().to_vector_f64();
  // Two ranks: rows [0, 2) and [2, 5), each with its own copy of the parameters.
  ThreadRanks ranks(2);
  const int64_t first[2] = {0, 2}, count[2] = {2, 3};
  std::vector<double> y_two(y_one.size()), dx_two(dx_one.size()), dw_two(size_t(c), 0.0), db_two(size_t(c), 0.0);
  std::vector<std::vector<double>> rm_two(2), rv_two(2);
  std::mutex result_mu;
  auto rank_run = [&](int k) {
    ThreadRankReducer reducer(&ranks, k);
    BatchStatsReducerScope scope(&reducer);
    Var xk(rows(xs, first[k], count[k]), true), wk(w.value().clone(), true), bk(b.value().clone(), true);
    Tensor rmk = Tensor::zeros({c}, DType::F64), rvk = Tensor::full({c}, 1.0, DType::F64);
    Var yk = composed ? batchnorm2d_sync_kernels(xk, wk, bk, &rmk, &rvk, {}, reducer) : batchnorm2d(xk, wk, bk, &rmk, &rvk, true);
    backward_dot(yk, rows(r, first[k], count[k]));
    std::lock_guard<std::mutex> lock(result_mu);
    const int64_t row = xs.numel() / n;
    const std::vector<double> yv = yk.value().to_vector_f64(), dxv = xk.grad().to_vector_f64();
    std::copy(yv.begin(), yv.end(), y_two.begin() + first[k] * row);
    std::copy(dxv.begin(), dxv.end(), dx_two.begin() + first[k] * row);
    for (int64_t i = 0; i < c; ++i) dw_two[size_t(i)] += wk.grad().to_vector_f64()[size_t(i)], db_two[size_t(i)] += bk.grad().to_vector_f64()[size_t(i)];
    rm_two[size_t(k)] = rmk.to_vector_f64(), rv_two[size_t(k)] = rvk.to_vector_f64();
  };
  std::thread t0(rank_run, 0), t1(rank_run, 1);
  t0.join(), t1.join();
  auto close = [](const std::vector<double>& a, const std::vector<double>& e) {
    REQUIRE(a.size() == e.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(e[i]).epsilon(1e-11).scale(1.0));
  };
  close(y_two, y_one);
  close(dx_two, dx_one);
  close(dw_two, dw_one);
  close(db_two, db_one);
  for (int k = 0; k < 2; ++k) close(rm_two[size_t(k)], rm.to_vector_f64()), close(rv_two[size_t(k)], rv.to_vector_f64());
  }
}
