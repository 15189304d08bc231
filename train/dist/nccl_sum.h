// GPU ranks (issue 21): the gradient sum of a data-parallel step over NCCL, on float32 buffers
// in each rank's GPU memory. Rank 0 makes NCCL's unique id and the ranks' Communicator (MPI)
// broadcasts it (llm.c's multi_gpu_config); NCCL then moves the bytes over NVLink, PCIe or the
// network. Compiled in where the CUDA build finds NCCL (and MPI); elsewhere constructing one
// fails with a message. Not yet used: `train --device cuda` does not exist yet (issue 21 part 1).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "train/dist/communicator.h"

namespace sm {

class NcclSum {
 public:
  // Collective over `ranks` (every rank calls it). Precondition: each rank has made its own GPU
  // current (one GPU per rank, e.g. the node-local rank's) before this call.
  explicit NcclSum(Communicator& ranks);
  ~NcclSum();
  NcclSum(const NcclSum&) = delete;
  NcclSum& operator=(const NcclSum&) = delete;

  // device_values (n) ← Σ over the ranks, on `stream` (a cudaStream_t; null: the default
  // stream), queued, not waited for. NCCL's ring/tree order: deterministic for the same ranks,
  // GPUs and NCCL settings (pin NCCL_ALGO and NCCL_PROTO for bit-identical runs), but not the
  // rank order of the MPI sum, whose result it matches to float rounding.
  void sum(float* device_values, int64_t n, void* stream = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "NCCL 2.28.9" when this build has NCCL, else "" (for `spinemark version`).
std::string nccl_library();

}  // namespace sm
