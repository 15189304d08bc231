// One description per op (style.md rule 15; the idea of ggml's tests/test-backend-ops.cpp): its
// shapes, how to build its inputs on a device and dtype, its tolerances and FLOPs. The same entry
// drives the gradient check and the CPU-vs-GPU parity of tests/test_ops.cpp and the timing of
// tests/ops/op_bench.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "tensor/kernels/kernel_list.h"
#include "tensor/rng.h"
#include "tensor/safetensors.h"
#include "tensor/tensor.h"

namespace sm::test {

// Test shapes are small (gradient check cost); timing shapes are network-sized.
enum class OpSize { Test, Timing };

// Makes an op's inputs. Every random value is drawn as float32 on the host, then converted to
// `dtype` and moved to `device`: a CPU float64 instance and a GPU float32 instance built from the
// same seed hold exactly the same values.
class OpMaker {
 public:
  OpMaker(Rng& rng, DType dtype, Device device, OpSize size) : rng_(rng), dtype_(dtype), device_(device), size_(size) {}
  Rng& rng() { return rng_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool timing() const { return size_ == OpSize::Timing; }

  Tensor place(const Tensor& host_f32) const;  // to dtype and device
  Var leaf(const Tensor& host_f32, const char* name) const { return Var(place(host_f32), true, name); }
  // Host float32 values:
  Tensor uniform(const Shape& shape, double lo = -1, double hi = 1);
  Tensor away_from_zero(const Shape& shape);  // |v| in [0.2, 1], random sign (ReLU kinks)
  Tensor distinct(const Shape& shape);        // a shuffled ramp 0.01·i (max-pool: no ties)
  Tensor heatmaps(const Shape& shape);        // (N, C, H, W) probabilities, each channel sums to 1
  Tensor mask(int64_t n, int64_t c);          // (N, C) 0/1 visibility, the first one visible

 private:
  Rng& rng_;
  DType dtype_;
  Device device_;
  OpSize size_;
};

// One built op. Differentiable ops and losses set `forward` (any output shape; losses give a
// scalar ()); optimizers set `step` instead. `state` gives further outputs that parity compares
// (batch-norm running statistics; an optimizer's parameters and moments).
struct OpInstance {
  std::vector<Var> leaves;                            // inputs with a gradient
  std::function<Var()> forward;                       // output from the leaves
  std::function<void(int step)> step;                 // optimizers: update number `step` (0-based)
  std::function<std::vector<NamedTensor>()> state;    // may be empty
  double flops_forward = 0, flops_backward = 0;       // approximate, for the timing mode (0: not counted)
};

enum OpFlag : unsigned {
  kOpNoGradient = 1,  // forward only: no gradient check, parity on the output alone
  kOpOptimizer = 4,   // parity only: `steps` updates, then parameters and moments compared
};

struct OpCase {
  std::string name;
  std::function<OpInstance(OpMaker&)> build;
  // The kernels (tensor/kernels/kernel_list.h) of the op's forward and backward, beside the
  // gradient accumulation every op shares. Whether the entry has a GPU version is asked of the
  // kernel layer through them (op_kernel_missing), not written down here.
  std::vector<kernels::KernelId> kernels;
  unsigned flags = 0;
  double grad_atol = 1e-6, grad_rtol = 1e-5;  // gradient check: |analytic − numeric| <= atol + rtol·|numeric|
  double tol_strict = 1e-5;  // parity, normalised ‖gpu − cpu‖₂/‖cpu‖₂: GPU strict float32 vs CPU float64
  double tol_tf32 = 1e-5;    // parity in the default mode (TF32 convolution and GEMM on Ampere+)
  int steps = 3;             // optimizers
  bool has(OpFlag f) const { return (flags & f) != 0; }
};

// Every differentiable op of layers/, the losses of layers/dsnt_losses.h, gaussian_heatmaps and
// heatmap_spread (forward only) and the optimizers of train/optim/optimizer.h.
const std::vector<OpCase>& op_table();

// The first of op's kernels with no implementation for float32 tensors on `device` in this build
// (kernels::supports), or null when every one has one: the entry then runs there. A GPU parity
// or timing run reports "no GPU version" for an entry with a missing kernel.
const char* op_kernel_missing(const OpCase& op, Device device);

// ---- running an entry -------------------------------------------------------------------------

// What one run of an entry produced, copied to the host (float64).
struct OpResult {
  std::vector<NamedTensor> outputs;  // "out", "d<leaf>" for every leaf, then the state
};

// Builds the entry on (dtype, device) from `seed` and runs it: forward and backward seeded with a
// fixed random tensor of the output's shape (= the gradient of dot(out, R)), or `steps`
// optimizer updates. `prefill_scale` (one per leaf, may be empty): leaf gradients start from
// random values of about that size, subtracted afterwards, so a backward that assigns instead of
// adding is caught.
OpResult op_run(const OpCase& op, DType dtype, Device device, uint64_t seed, const std::vector<double>& prefill_scale = {});

// ‖a − b‖₂ / ‖b‖₂ (‖a − b‖₂ when b is 0).
double normalised_error(const Tensor& a, const Tensor& b);

// ---- GPU modes: the one place that talks to the backend's switches -----------------------------

bool gpu_usable();             // a CUDA build with a usable GPU
std::string gpu_describe();    // the device, or why there is none
bool gpu_tf32_active();        // the default mode uses TF32 on this GPU
// Strict: no TF32 in convolution and GEMM. Deterministic: fixed algorithms, no float atomics.
void gpu_mode_set(bool strict, bool deterministic);
void gpu_mode_get(bool& strict, bool& deterministic);
void gpu_synchronize();
std::string gpu_memory_describe();

// Puts the GPU in a mode for one scope and restores the previous one.
class GpuModeGuard {
 public:
  GpuModeGuard(bool strict, bool deterministic) {
    gpu_mode_get(strict_, det_);
    gpu_mode_set(strict, deterministic);
  }
  ~GpuModeGuard() { gpu_mode_set(strict_, det_); }
  GpuModeGuard(const GpuModeGuard&) = delete;
  GpuModeGuard& operator=(const GpuModeGuard&) = delete;

 private:
  bool strict_ = true, det_ = true;
};

}  // namespace sm::test
