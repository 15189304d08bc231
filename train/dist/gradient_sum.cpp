// The per-step gradient sum over the ranks (see gradient_sum.h).
#include "train/dist/gradient_sum.h"

#include "tensor/check.h"
#include "tensor/device_backend.h"

namespace sm {

GradientSum::GradientSum(Communicator* comm, Device device) {
  if (!comm || comm->size() == 1) return;
  comm_ = comm;
  if (device == Device::CPU) {
    transport_ = "MPI";
    return;
  }
  // Every rank must take the same branch (NcclSum's constructor is a collective): the same
  // binary runs on every rank, so nccl_library() agrees.
  if (!nccl_library().empty()) {
    nccl_ = std::make_unique<NcclSum>(*comm);
    transport_ = "NCCL";
  } else {
    transport_ = "MPI through the host";
  }
}

GradientSum::~GradientSum() = default;

void GradientSum::sum(ParameterBuffer& params) {
  if (!comm_) return;
  params.grads_gather();
  for (ParameterGroup& g : params.groups()) {
    SM_CHECK(g.dtype == DType::F32, "data-parallel training sums float32 gradients (group of '" << g.slots.front().name << "' is "
                                                                                              << dtype_name(g.dtype) << ")");
    if (g.device == Device::CPU) {
      comm_->sum(g.grads.f32(), g.grads.numel());
    } else if (nccl_) {
      // Queued on the stream every op runs on: the optimizer's kernels that follow see the sum.
      nccl_->sum(static_cast<float*>(g.grads.raw_data()), g.grads.numel(), device_backend().stream_handle());
    } else {
      Tensor host = g.grads.to(Device::CPU);  // waits for the backward pass's kernels
      comm_->sum(host.f32(), host.numel());
      g.grads.copy_(host);
    }
  }
}

}  // namespace sm
