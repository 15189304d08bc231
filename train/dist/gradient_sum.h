// Σ over the ranks of every parameter gradient, before each optimizer step of a data-parallel
// run: afterwards every rank holds the gradient of the whole global batch and takes the same
// step. Where the gradients live decides the transport:
//   CPU ranks            the Communicator's sum (MPI), in rank order, in double: N ranks give
//                        bit-identical sums on every run;
//   GPU ranks with NCCL  NCCL's all-reduce on the GPU buffers, queued on the backend's stream
//                        (float32, NCCL's ring/tree order: deterministic for one set of GPUs and
//                        NCCL settings, equal to the CPU order's sum up to float rounding);
//   GPU ranks, no NCCL   through the host: each group copied down, summed by the Communicator,
//                        copied back (correct and slow; `spinemark version` says if NCCL is in).
#pragma once
#include <memory>
#include <string>

#include "layers/parameter_buffer.h"
#include "train/dist/communicator.h"
#include "train/dist/nccl_sum.h"

namespace sm {

class GradientSum {
 public:
  // comm null or of one rank: sum() does nothing. For GPU gradients, NCCL is set up here (a
  // collective: every rank constructs its GradientSum at the same point).
  GradientSum(Communicator* comm, Device device);
  ~GradientSum();
  GradientSum(const GradientSum&) = delete;
  GradientSum& operator=(const GradientSum&) = delete;

  void sum(ParameterBuffer& params);
  // "none" (one process), "MPI", "NCCL" or "MPI through the host".
  const std::string& transport() const { return transport_; }

 private:
  Communicator* comm_ = nullptr;
  std::unique_ptr<NcclSum> nccl_;
  std::string transport_ = "none";
};

}  // namespace sm
