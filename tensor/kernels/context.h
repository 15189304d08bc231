// The execution context of the CPU kernels: what used to be process-wide globals (the conv
// threading strategy, the multiply-accumulate counter) lives in one object that a caller scopes
// explicitly. exec_context() is the innermost ExecScope of the calling thread, or the process's
// default context when none is open; a benchmark opens a scope with its own context, runs, and
// reads that context's counters without seeing anybody else's work.
#pragma once
#include <atomic>
#include <cstdint>

namespace sm {

// How a convolution uses the threads: split the batch over OpenMP threads, or one image at a
// time with the threads inside the GEMM. Auto picks per call (see cpu/conv2d.cpp).
enum class ConvThreading : int { Auto = 0, BatchSplit = 1, GemmThreads = 2 };

// Which float32 matrix-multiply micro-kernels the CPU convolutions and linear layers use
// (cpu/gemm.h): Auto = the fastest this CPU runs (AVX-512, else AVX2+FMA, else plain C++);
// Portable = Eigen's GEMM, the reference every fast path is tested against; the others force
// one family (falling back to the next one down when the CPU lacks it). float64 always uses
// Eigen. SPINEMARK_CPU_KERNELS=portable|scalar|avx2|avx512 sets the process default.
enum class CpuKernels : int { Auto = 0, Portable = 1, Scalar = 2, Avx2 = 3, Avx512 = 4 };

// How the float32 CPU kernels compute a 3×3, stride-1, undilated convolution (cpu/winograd.h):
// Auto = Winograd F(4×4, 3×3) or F(2×2, 3×3) where it was measured faster than the direct GEMM,
// else direct; Direct = always the im2col GEMM; WinogradF2 / WinogradF4 force that tile size
// wherever it applies (the tests use them on small shapes). float64 and the Portable family are
// always direct (the reference). SPINEMARK_CONV_ALGO=direct|winograd2|winograd4 sets the default.
enum class ConvAlgo : int { Auto = 0, Direct = 1, WinogradF2 = 2, WinogradF4 = 3 };

struct KernelCounters {
  std::atomic<int64_t> conv2d_forward_macs{0};  // N·Cout·Ho·Wo·Cin·kh·kw per conv2d forward
};

struct ExecContext {
  int threads = 0;  // OpenMP threads for the kernels; 0 = OpenMP's current default
  ConvThreading conv_threading = ConvThreading::Auto;
  CpuKernels cpu_kernels = CpuKernels::Auto;
  ConvAlgo conv_algo = ConvAlgo::Auto;
  KernelCounters counters;
  // The thread count a kernel should use now: `threads`, or omp_get_max_threads() when 0.
  int threads_or_default() const;
};

// The calling thread's current context (never null).
ExecContext& exec_context();

// The float32 GEMM micro-kernels the CPU convolutions use in the calling thread's context on this
// CPU: "avx512", "avx2", "scalar" or "portable" (Eigen). (Defined in cpu/gemm.cpp.)
const char* cpu_kernels_in_use();

// Makes `ctx` the calling thread's context until the scope ends (scopes nest).
class ExecScope {
 public:
  explicit ExecScope(ExecContext& ctx);
  ~ExecScope();
  ExecScope(const ExecScope&) = delete;
  ExecScope& operator=(const ExecScope&) = delete;

 private:
  ExecContext* previous_;
};

}  // namespace sm
