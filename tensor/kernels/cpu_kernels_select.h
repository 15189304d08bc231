// Choosing the float32 CPU kernel family (context.h's CpuKernels) by name and for the whole
// process: what SPINEMARK_CPU_KERNELS does at start-up, for a caller that pins it (a training run
// whose config names a family, docs/training.md on reproducibility). Defined in context.cpp.
#pragma once
#include <string>

#include "tensor/kernels/context.h"

namespace sm {

// "auto", "portable", "scalar", "avx2" or "avx512" → the family; false for any other name.
bool cpu_kernels_from_name(const std::string& name, CpuKernels& out);

// Sets the process default family: every thread without an open ExecScope uses it, OpenMP's
// worker threads included. cpu_kernels_in_use() then names what it resolves to on this CPU.
void cpu_kernels_default_set(CpuKernels kernels);

}  // namespace sm
