// The op table (tests/ops/op_table.h) as tests: a central-difference gradient check of every
// differentiable entry (CPU, float64; autograd/gradcheck.h), and CPU-vs-GPU parity of every entry
// (the GPU in float32 on the same values, gradients pre-filled and subtracted, the CPU in float64)
// in strict float32 and in the default TF32 mode, by normalised error against each entry's stated
// tolerance. Entries without a CUDA version are reported, not failed. Without a GPU the parity
// cases are skipped and one case says why.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "autograd/gradcheck.h"
#include "tensor/ops.h"
#include "tests/ops/op_table.h"

using namespace sm;
using namespace sm::test;

namespace {

uint64_t op_seed(size_t index) { return 1000 + uint64_t(index); }

double rms(const Tensor& t) {
  const double n = double(t.numel());
  return n > 0 ? std::sqrt(tensor_sum_squares(t) / n) : 0.0;
}

}  // namespace

TEST_CASE("ops: the table covers each op once, with sane tolerances") {
  const std::vector<OpCase>& table = op_table();
  CHECK(table.size() >= 30);
  for (size_t i = 0; i < table.size(); ++i) {
    CAPTURE(table[i].name);
    for (size_t j = 0; j < i; ++j) CHECK(table[j].name != table[i].name);
    CHECK(table[i].tol_strict > 0);
    CHECK(table[i].tol_tf32 >= table[i].tol_strict);
  }
}

TEST_CASE("ops: gradient check of every differentiable op (CPU, float64)") {
  const std::vector<OpCase>& table = op_table();
  int checked = 0;
  std::string skipped;
  for (size_t i = 0; i < table.size(); ++i) {
    const OpCase& op = table[i];
    if (op.has(kOpNoGradient) || op.has(kOpOptimizer)) {
      skipped += " " + op.name + (op.has(kOpOptimizer) ? " (optimizer: parity only)" : " (no gradient)") + ";";
      continue;
    }
    CAPTURE(op.name);
    Rng rng(op_seed(i));
    OpMaker m(rng, DType::F64, Device::CPU, OpSize::Test);
    OpInstance inst = op.build(m);
    REQUIRE(!inst.leaves.empty());
    GradcheckOptions opt;
    opt.atol = op.grad_atol, opt.rtol = op.grad_rtol;
    const GradcheckResult r = gradcheck(inst.forward, inst.leaves, opt);
    CHECK_MESSAGE(r.ok, op.name << ": " << r.report);
    CHECK(r.checked > 0);
    ++checked;
  }
  MESSAGE(checked << " ops gradient-checked; skipped:" << skipped);
}

// ---- CPU-vs-GPU parity --------------------------------------------------------------------------

namespace {

// Runs every entry on the CPU in float64 and on `dev` in float32; one report line per entry with
// its worst output (error / tolerance), so a GPU run shows how much room each tolerance leaves.
// With dev = CPU the same driver compares the CPU's float32 path with its float64 reference.
void parity_run(Device dev, bool strict) {
  GpuModeGuard mode(strict, true);
  const bool gpu = dev == Device::CUDA, tf32 = gpu && !strict && gpu_tf32_active();
  std::ostringstream report;
  report << (!gpu ? "CPU float32" : strict ? "strict float32" : tf32 ? "default (TF32)" : "default (no TF32 on this GPU)")
         << " parity against the CPU in float64, worst output of each op:\n";
  const std::vector<OpCase>& table = op_table();
  for (size_t i = 0; i < table.size(); ++i) {
    const OpCase& op = table[i];
    CAPTURE(op.name);
    const OpResult cpu = op_run(op, DType::F64, Device::CPU, op_seed(i));
    char line[240];
    if (const char* missing = gpu ? op_kernel_missing(op, dev) : nullptr) {
      std::string why;
      try {
        op_run(op, DType::F32, Device::CUDA, op_seed(i));
      } catch (const Error& e) {
        why = e.what();
      }
      CHECK_MESSAGE(!why.empty(), op.name << " ran on the GPU although kernel " << missing << " has no CUDA version");
      std::snprintf(line, sizeof line, "  %-34s no GPU version (%s)\n", op.name.c_str(), missing);
      report << line;
      continue;
    }
    // GPU gradients start from random values about as large as the gradient: (r + g) − r in
    // float32 loses up to |r|·2⁻²⁴ of g, which must stay the kernel's error, not the test's.
    std::vector<double> scales;
    for (const NamedTensor& o : cpu.outputs)
      if (o.first.size() > 1 && o.first[0] == 'd' && o.first != "out") scales.push_back(rms(o.second) > 0 ? rms(o.second) : 1.0);
    const OpResult other = op_run(op, DType::F32, dev, op_seed(i), scales);
    gpu_synchronize();
    REQUIRE(other.outputs.size() == cpu.outputs.size());
    const double tol = tf32 ? op.tol_tf32 : op.tol_strict;
    double worst_ratio = -1, worst_err = 0;
    std::string worst_name;
    for (size_t k = 0; k < cpu.outputs.size(); ++k) {
      const auto& [name, c] = cpu.outputs[k];
      REQUIRE(other.outputs[k].first == name);
      REQUIRE_MESSAGE(other.outputs[k].second.shape() == c.shape(), op.name << " / " << name);
      const double err = normalised_error(other.outputs[k].second, c);
      INFO(op.name << " / " << name << ": normalised error " << err << " (tolerance " << tol << ")");
      CHECK(err <= tol);
      if (!(err / tol <= worst_ratio)) worst_ratio = err / tol, worst_err = err, worst_name = name;
    }
    std::snprintf(line, sizeof line, "  %-34s %-26s error %9.2e  tolerance %8.1e  (%5.3f of it)\n", op.name.c_str(),
                  worst_name.c_str(), worst_err, tol, worst_ratio);
    report << line;
  }
  MESSAGE(report.str());
}

}  // namespace

// No GPU needed: proves the driver (prefilled gradients, state, optimizer steps) on every
// entry, and that every op's float32 CPU path agrees with its float64 one.
TEST_CASE("ops: the parity driver on the CPU, float32 against float64") { parity_run(Device::CPU, true); }

TEST_CASE("ops: GPU") {
  if (!gpu_usable()) {
    MESSAGE("SKIPPED: " << gpu_describe() << "; the CPU-vs-GPU parity cases of this program are skipped");
    return;
  }
  MESSAGE("GPU: " << gpu_describe() << ", TF32 " << (gpu_tf32_active() ? "available" : "off"));
}

TEST_CASE("ops: CPU-vs-GPU parity of every op, strict float32" * doctest::skip(!gpu_usable())) {
  parity_run(Device::CUDA, true);
  MESSAGE(gpu_memory_describe());
}

// The table's small shapes mostly get FMA kernels even in the default mode; test_cuda's
// network-sized convolution case is the check that TF32 is really used.
TEST_CASE("ops: CPU-vs-GPU parity of every op, default TF32 mode" * doctest::skip(!gpu_usable())) {
  parity_run(Device::CUDA, false);
}
