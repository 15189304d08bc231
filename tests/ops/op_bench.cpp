// op_bench: times every entry of the op table (tests/ops/op_table.h) at its timing shapes, float32,
// on the CPU and (when present) the GPU: median forward and backward milliseconds and GFLOP/s
// from the entry's FLOP count (ggml's test-backend-ops "perf" mode). A benchmark, not a test.
//   op_bench [--filter TEXT] [--reps N] [--threads N] [--device cpu|cuda|all]
#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/ops/op_table.h"

using namespace sm;
using namespace sm::test;

namespace {

struct BenchConfig {
  std::string filter;
  int reps = 5;
  int threads = 0;  // 0: OpenMP's default
  std::string device = "all";
};

struct Timing {
  double forward_ms = 0, backward_ms = -1;  // -1: no backward
};

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void sync(Device d) {
  if (d == Device::CUDA) gpu_synchronize();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One warm-up run, then `reps` timed runs; forward and backward timed separately, each ending
// with a device synchronisation.
Timing op_time(const OpCase& op, OpInstance& inst, Device dev, int reps) {
  std::vector<double> fwd, bwd;
  if (op.has(kOpOptimizer)) {
    inst.step(0);
    for (int r = 0; r < reps; ++r) {
      sync(dev);
      const double t0 = now_ms();
      inst.step(r + 1);
      sync(dev);
      fwd.push_back(now_ms() - t0);
    }
    return {median(fwd), -1};
  }
  const bool grad = !op.has(kOpNoGradient);
  Tensor seed;
  for (int r = -1; r < reps; ++r) {
    sync(dev);
    const double t0 = now_ms();
    Var out = inst.forward();
    sync(dev);
    const double t1 = now_ms();
    if (grad) {
      if (!seed.defined()) {
        Rng rng(7);
        OpMaker m(rng, DType::F32, dev, OpSize::Timing);
        seed = m.place(m.uniform(out.shape()));
      }
      backward(out, seed);
      sync(dev);
    }
    const double t2 = now_ms();
    if (r < 0) continue;  // warm-up
    fwd.push_back(t1 - t0);
    bwd.push_back(t2 - t1);
  }
  return {median(fwd), grad ? median(bwd) : -1};
}

std::string gflops(double flops, double ms) {
  if (flops <= 0 || ms <= 0) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", flops / (ms * 1e6));
  return b;
}

std::string millis(double ms) {
  if (ms < 0) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", ms);
  return b;
}

// The first leaf's shape, "(8, 64, 128, 96)" without spaces.
std::string shape_text(const OpInstance& inst) {
  if (inst.leaves.empty()) return "-";
  std::string s = "(";
  for (int64_t d : inst.leaves[0].shape()) s += (s.size() > 1 ? "," : "") + std::to_string(d);
  return s + ")";
}

int bench_run(const BenchConfig& cfg) {
  if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
  std::vector<Device> devices;
  if (cfg.device != "cuda") devices.push_back(Device::CPU);
  if (cfg.device != "cpu") {
    if (gpu_usable())
      devices.push_back(Device::CUDA);
    else
      std::printf("cuda: not timed: %s\n", gpu_describe().c_str());
  }
  if (devices.empty()) return 1;
  std::printf("op_bench: float32, timing shapes, median of %d reps after 1 warm-up, %d CPU threads%s%s\n", cfg.reps,
              omp_get_max_threads(), gpu_usable() ? "; cuda: " : "", gpu_usable() ? gpu_describe().c_str() : "");
  std::printf("%-34s %-5s %-20s %10s %10s %12s %12s\n", "op", "dev", "first input", "fwd ms", "bwd ms", "fwd GFLOP/s",
              "bwd GFLOP/s");
  int matched = 0;
  for (const OpCase& op : op_table()) {
    if (!cfg.filter.empty() && op.name.find(cfg.filter) == std::string::npos) continue;
    ++matched;
    for (Device dev : devices) {
      const char* dname = dev == Device::CUDA ? "cuda" : "cpu";
      if (const char* missing = op_kernel_missing(op, dev)) {
        std::printf("%-34s %-5s no GPU version (%s)\n", op.name.c_str(), dname, missing);
        continue;
      }
      Rng rng(1);
      OpMaker m(rng, DType::F32, dev, OpSize::Timing);
      OpInstance inst = op.build(m);
      GpuModeGuard mode(false, false);  // the default (training) mode: TF32 where available
      const Timing t = op_time(op, inst, dev, cfg.reps);
      std::printf("%-34s %-5s %-20s %10s %10s %12s %12s\n", op.name.c_str(), dname, shape_text(inst).c_str(),
                  millis(t.forward_ms).c_str(),
                  millis(t.backward_ms).c_str(), gflops(inst.flops_forward, t.forward_ms).c_str(),
                  gflops(inst.flops_backward, t.backward_ms).c_str());
      std::fflush(stdout);
    }
  }
  if (matched == 0) std::fprintf(stderr, "op_bench: no op matches --filter '%s'\n", cfg.filter.c_str());
  return matched == 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  BenchConfig cfg;
  CLI::App app{"op_bench: time every op of the op table (forward, backward, GFLOP/s) per device"};
  app.add_option("--filter", cfg.filter, "only ops whose name contains this text");
  app.add_option("--reps", cfg.reps, "timed repetitions (median reported)")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--threads", cfg.threads, "CPU threads (0: OpenMP's default)")->check(CLI::Range(0, 256));
  app.add_option("--device", cfg.device, "cpu, cuda or all")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda", "all"}));
  CLI11_PARSE(app, argc, argv);
  try {
    return bench_run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "op_bench: %s\n", e.what());
    return 1;
  }
}
