// Numerical gradient check (central differences) for any function of Vars. Used by every op's
// and layer's test: f maps the leaves to an output; the check compares the analytic gradient of
// dot(f(leaves), R) (R random) with (L(x+h) - L(x-h)) / 2h for every element of every leaf.
// Leaves should be float64. Their gradients are pre-filled with random non-zero values before
// backward, and the check subtracts them afterwards: an op that assigns instead of adding fails.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace sm {

struct GradcheckOptions {
  double step = 1e-6;   // h
  double atol = 1e-6;   // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-5;
  uint64_t seed = 1234;
  int64_t max_elements_per_leaf = 400;  // larger leaves are checked on a fixed random subset
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  int64_t checked = 0;
  std::string report;  // first failures: leaf, element, analytic vs numeric
};

GradcheckResult gradcheck(const std::function<Var()>& f, std::vector<Var> leaves, const GradcheckOptions& opt = {});

}  // namespace sm
