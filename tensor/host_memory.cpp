// Allocator settings for tensor storage (see host_memory.h for why).
#include "tensor/host_memory.h"

#include <cstdlib>  // defines __GLIBC__ (through <features.h>) for the test below: without a C
                    // library header first, the test was false and this function did nothing

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace sm {

void host_memory_configure_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // larger blocks still get their own mmap
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);  // grow the heap in 64 MiB steps: fewer brk calls
#endif
}

}  // namespace sm
