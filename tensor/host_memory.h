// How the C library's allocator treats the host tensors' storage (tensor.cpp allocates it with
// aligned_alloc). A training step frees and re-allocates the same few hundred megabytes of
// activations and gradients every step; by default glibc gives large blocks their own mmap and
// trims freed heap memory back to the kernel, so each step page-faults much of it in again (the
// kernel zeroing every page). Keeping freed blocks in the heap lets the next step reuse them
// without faults: `bench --model detect`'s training step went from 1.61-1.64 to 1.40-1.46 s,
// for a higher peak resident size (+7 % in that trial, still below PyTorch's; docs/performance.md).
#pragma once

namespace sm {

// Process-wide: blocks up to 32 MiB (glibc's ceiling) come from the heap, and the heap keeps up
// to 1 GiB of freed memory instead of trimming it. Call once at start (the spinemark program
// does); a library user who links the framework decides for their own process.
void host_memory_configure_for_reuse();

}  // namespace sm
