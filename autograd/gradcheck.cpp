// Central-difference gradient check (see gradcheck.h).
#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "tensor/ops.h"
#include "tensor/rng.h"

namespace sm {

GradcheckResult gradcheck(const std::function<Var()>& f, std::vector<Var> leaves, const GradcheckOptions& opt) {
  GradcheckResult res;
  Rng rng(opt.seed);
  // Random projection R makes a scalar loss L = sum(out * R) that weighs every output element.
  Var out0 = f();
  Tensor proj = Tensor::empty(out0.shape(), out0.value().dtype());
  tensor_fill_uniform(proj, rng, -1.0, 1.0);
  auto loss = [&]() {
    NoGradGuard ng;
    return tensor_dot(f().value(), proj);
  };

  // Pre-fill leaf gradients with non-zero values: backward must add to them.
  std::vector<Tensor> prefill;
  for (Var& leaf : leaves) {
    SM_CHECK(leaf.requires_grad(), "gradcheck: leaf '" << leaf.name() << "' does not require a gradient");
    Tensor g = Tensor::empty(leaf.shape(), leaf.value().dtype());
    tensor_fill_uniform(g, rng, 0.5, 1.5);
    leaf.grad() = g.clone();
    prefill.push_back(g);
  }
  backward(out0, proj);

  std::ostringstream rep;
  int failures = 0;
  for (size_t li = 0; li < leaves.size(); ++li) {
    Var& leaf = leaves[li];
    SM_CHECK(leaf.grad().defined(), "gradcheck: no gradient reached leaf " << li);
    Tensor analytic = tensor_sub(leaf.grad(), prefill[li]);
    Tensor& x = leaf.value_mut();
    const int64_t n = x.numel();
    std::vector<int64_t> idx;
    if (n <= opt.max_elements_per_leaf) {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t k = 0; k < opt.max_elements_per_leaf; ++k) idx.push_back(int64_t(rng.below(uint64_t(n))));
    }
    dispatch_float(x.dtype(), [&](auto zero) {
      using T = decltype(zero);
      T* p = x.data<T>();
      const T* a = analytic.data<T>();
      for (int64_t i : idx) {
        T saved = p[i];
        p[i] = saved + T(opt.step);
        double lp = loss();
        p[i] = saved - T(opt.step);
        double lm = loss();
        p[i] = saved;
        double numeric = (lp - lm) / (2.0 * opt.step);
        double err = std::fabs(double(a[i]) - numeric);
        res.max_abs_error = std::max(res.max_abs_error, err);
        ++res.checked;
        if (!(err <= opt.atol + opt.rtol * std::fabs(numeric))) {
          res.ok = false;
          if (failures++ < 8)
            rep << "leaf " << li << " ('" << leaf.name() << "') element " << i << ": analytic " << double(a[i])
                << " numeric " << numeric << "\n";
        }
      }
    });
  }
  res.report = rep.str();
  return res;
}

}  // namespace sm
