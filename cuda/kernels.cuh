// Shared device helpers for the .cu files of cuda/: launch sizes and fixed-order (deterministic)
// block reductions. Only .cu files include this.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cuda/context.h"

namespace sm::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(1) << 20)));
}

// Σ of v over the block (blockDim.x a multiple of 32, at most 1024): warp shuffles, then the
// warps' sums in warp order. The order is fixed, so the result is bit-reproducible. Returns the
// sum in every thread. `smem` holds 32 values.
template <class T> __device__ T block_sum(T v, T* smem) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();  // smem may still be read by a previous call
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  const unsigned nwarps = (blockDim.x + 31u) >> 5;
  T total = T(0);
  for (unsigned i = 0; i < nwarps; ++i) total += smem[i];
  return total;
}

template <class T> __device__ T block_max(T v, T* smem) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  const unsigned nwarps = (blockDim.x + 31u) >> 5;
  T m = smem[0];
  for (unsigned i = 1; i < nwarps; ++i) m = max(m, smem[i]);
  return m;
}

}  // namespace sm::cuda
