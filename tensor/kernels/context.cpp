// Execution context (see context.h): a thread-local pointer to the innermost scope's context.
#include "tensor/kernels/context.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>

namespace sm {

namespace {
// SPINEMARK_CPU_KERNELS=portable|scalar|avx2|avx512 (anything else: auto).
CpuKernels cpu_kernels_from_env() {
  const char* v = std::getenv("SPINEMARK_CPU_KERNELS");
  if (!v) return CpuKernels::Auto;
  if (!std::strcmp(v, "portable")) return CpuKernels::Portable;
  if (!std::strcmp(v, "scalar")) return CpuKernels::Scalar;
  if (!std::strcmp(v, "avx2")) return CpuKernels::Avx2;
  if (!std::strcmp(v, "avx512")) return CpuKernels::Avx512;
  return CpuKernels::Auto;
}

// SPINEMARK_CONV_ALGO=direct|winograd2|winograd4 (anything else: auto).
ConvAlgo conv_algo_from_env() {
  const char* v = std::getenv("SPINEMARK_CONV_ALGO");
  if (!v) return ConvAlgo::Auto;
  if (!std::strcmp(v, "direct")) return ConvAlgo::Direct;
  if (!std::strcmp(v, "winograd2")) return ConvAlgo::WinogradF2;
  if (!std::strcmp(v, "winograd4")) return ConvAlgo::WinogradF4;
  return ConvAlgo::Auto;
}

ExecContext& process_default() {
  static ExecContext ctx;  // never destroyed before the kernels that use it (function-local static)
  static const bool from_env = (ctx.cpu_kernels = cpu_kernels_from_env(), ctx.conv_algo = conv_algo_from_env(), true);
  (void)from_env;
  return ctx;
}
thread_local ExecContext* t_current = nullptr;
}  // namespace

int ExecContext::threads_or_default() const { return threads > 0 ? threads : omp_get_max_threads(); }

ExecContext& exec_context() { return t_current ? *t_current : process_default(); }

ExecScope::ExecScope(ExecContext& ctx) : previous_(t_current) { t_current = &ctx; }
ExecScope::~ExecScope() { t_current = previous_; }

}  // namespace sm
