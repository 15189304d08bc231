// How the C library's allocator treats the host tensors' storage (tensor.cpp allocates it with
// aligned_alloc). A training step frees and re-allocates the same few hundred megabytes of
// activations and gradients every step; by default glibc serves every block over 128 KiB..32 MiB
// with its own mmap and returns it with munmap, so each step page-faults all of it in again
// (the kernel zeroes every page: 10 % of a CPU training step, measured). Keeping freed blocks
// in the heap lets the next step reuse them without faults, for a higher peak resident size
// (+7 % on `bench --model detect`, still below PyTorch's; docs/performance.md).
#pragma once

namespace sm {

// Process-wide: blocks up to 32 MiB (glibc's ceiling) come from the heap, and the heap keeps up
// to 1 GiB of freed memory instead of trimming it. Call once at start (the spinemark program
// does); a library user who links the framework decides for their own process.
void host_memory_configure_for_reuse();

}  // namespace sm
