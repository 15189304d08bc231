// Rank 0's weights to every rank (see module_broadcast.h).
#include "train/dist/module_broadcast.h"

#include "tensor/check.h"

namespace sm {

void module_broadcast(Communicator& comm, Module& module) {
  if (comm.size() == 1) return;
  std::vector<NamedVar> state = module.state_dict();  // parameters then buffers, module order
  int64_t bytes = 0;
  for (auto& [name, v] : state) bytes += v.value().numel() * int64_t(dtype_size(v.value().dtype()));
  int64_t rank0_bytes = bytes;
  comm.broadcast(&rank0_bytes, sizeof rank0_bytes);
  SM_CHECK(rank0_bytes == bytes, "module_broadcast: rank " << comm.rank() << " holds " << bytes << " bytes of weights, rank 0 "
                                                          << rank0_bytes << " (different networks on different ranks)");
  for (auto& [name, v] : state) {
    Tensor& t = v.value_mut();
    SM_CHECK(t.is_contiguous(), "module_broadcast: " << name << " is not contiguous");
    if (t.device() == Device::CPU) {
      comm.broadcast(t.raw_data(), t.numel() * int64_t(dtype_size(t.dtype())));
    } else {  // a GPU rank's weights: through the host (once per stage, not per step)
      Tensor host = t.to(Device::CPU);
      comm.broadcast(host.raw_data(), host.numel() * int64_t(dtype_size(host.dtype())));
      t.copy_(host);
    }
  }
}

}  // namespace sm
