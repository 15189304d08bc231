// Execution context (see context.h): a thread-local pointer to the innermost scope's context.
#include "tensor/kernels/cpu_kernels_select.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>

namespace sm {

namespace {
// SPINEMARK_CPU_KERNELS=portable|scalar|avx2|avx512 (anything else: auto).
CpuKernels cpu_kernels_from_env() {
  const char* v = std::getenv("SPINEMARK_CPU_KERNELS");
  CpuKernels k = CpuKernels::Auto;
  if (!v || !cpu_kernels_from_name(v, k)) return CpuKernels::Auto;
  return k;
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

bool cpu_kernels_from_name(const std::string& v, CpuKernels& out) {
  if (v == "auto") out = CpuKernels::Auto;
  else if (v == "portable") out = CpuKernels::Portable;
  else if (v == "scalar") out = CpuKernels::Scalar;
  else if (v == "avx2") out = CpuKernels::Avx2;
  else if (v == "avx512") out = CpuKernels::Avx512;
  else return false;
  return true;
}

void cpu_kernels_default_set(CpuKernels kernels) { process_default().cpu_kernels = kernels; }

int ExecContext::threads_or_default() const { return threads > 0 ? threads : omp_get_max_threads(); }

ExecContext& exec_context() { return t_current ? *t_current : process_default(); }

ExecScope::ExecScope(ExecContext& ctx) : previous_(t_current) { t_current = &ctx; }
ExecScope::~ExecScope() { t_current = previous_; }

}  // namespace sm
