// Execution context (see context.h): a thread-local pointer to the innermost scope's context.
#include "tensor/kernels/context.h"

#include <omp.h>

namespace sm {

namespace {
ExecContext& process_default() {
  static ExecContext ctx;  // never destroyed before the kernels that use it (function-local static)
  return ctx;
}
thread_local ExecContext* t_current = nullptr;
}  // namespace

int ExecContext::threads_or_default() const { return threads > 0 ? threads : omp_get_max_threads(); }

ExecContext& exec_context() { return t_current ? *t_current : process_default(); }

ExecScope::ExecScope(ExecContext& ctx) : previous_(t_current) { t_current = &ctx; }
ExecScope::~ExecScope() { t_current = previous_; }

}  // namespace sm
