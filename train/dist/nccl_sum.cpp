// The NCCL gradient sum (see nccl_sum.h). Compiled with SPINEMARK_NCCL where the CUDA build finds
// nccl.h and libnccl (CMakeLists.txt); this file alone sees nccl.h.
#include "train/dist/nccl_sum.h"

#include "tensor/check.h"

#ifdef SPINEMARK_NCCL
#include <nccl.h>

#define SM_NCCL_CHECK(call)                                                                    \
  do {                                                                                         \
    const ncclResult_t nccl_result_ = (call);                                                  \
    SM_CHECK(nccl_result_ == ncclSuccess, "NCCL: " #call ": " << ncclGetErrorString(nccl_result_)); \
  } while (0)
#endif

namespace sm {

#ifdef SPINEMARK_NCCL

struct NcclSum::Impl {
  ncclComm_t comm = nullptr;
};

NcclSum::NcclSum(Communicator& ranks) : impl_(std::make_unique<Impl>()) {
  ncclUniqueId id{};
  if (ranks.rank() == 0) SM_NCCL_CHECK(ncclGetUniqueId(&id));
  ranks.broadcast(&id, int64_t(sizeof id));  // over MPI: NCCL needs every rank to hold rank 0's id
  SM_NCCL_CHECK(ncclCommInitRank(&impl_->comm, ranks.size(), id, ranks.rank()));
}

NcclSum::~NcclSum() {
  if (impl_ && impl_->comm) ncclCommDestroy(impl_->comm);
}

void NcclSum::sum(float* device_values, int64_t n, void* stream) {
  SM_CHECK(n >= 0, "NcclSum::sum: n " << n << " < 0");
  SM_NCCL_CHECK(ncclAllReduce(device_values, device_values, size_t(n), ncclFloat, ncclSum, impl_->comm,
                              static_cast<cudaStream_t>(stream)));
}

std::string nccl_library() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (version unknown)";
  // NCCL_VERSION(X, Y, Z): X·1000 + Y·100 + Z up to 2.8, X·10000 + Y·100 + Z from 2.9 on.
  const int major = v >= 10000 ? v / 10000 : v / 1000, minor = v >= 10000 ? v / 100 % 100 : v / 100 % 10;
  return "NCCL " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(v % 100);
}

#else

struct NcclSum::Impl {};

NcclSum::NcclSum(Communicator&) {
  SM_FAIL("this build of spinemark has no NCCL (a CUDA build finds it in the CUDA toolkit; spinemark version says "
          "whether it is in)");
}
NcclSum::~NcclSum() = default;
void NcclSum::sum(float*, int64_t, void*) { SM_FAIL("this build of spinemark has no NCCL"); }
std::string nccl_library() { return ""; }

#endif

}  // namespace sm
