// Picks the device backend: cuda/ in a CUDA build, otherwise one that refuses politely (the
// choice is kernels::kCudaBuilt of tensor/kernels/dispatch.h, the one place that knows).
#include "tensor/device_backend.h"

#include "cuda/backend.h"
#include "tensor/kernels/dispatch.h"

namespace sm {

namespace {
struct NoDeviceBackend final : DeviceBackend {
  const char* name() const override { return "none"; }
  bool available() const override { return false; }
  [[noreturn]] void fail() { SM_FAIL("this spinemark was built without CUDA; rebuild with -DSPINEMARK_CUDA=ON on a machine with nvcc and cuDNN"); }
  void* alloc(size_t) override { fail(); }
  void free(void*, size_t) override {}
  void copy(void*, Device, const void*, Device, size_t) override { fail(); }
  void fill(Tensor&, double) override { fail(); }
  void synchronize() override {}
  std::string describe() const override {
    return "this spinemark was built without CUDA (configure with -DSPINEMARK_CUDA=ON on a machine with nvcc and cuDNN)";
  }
};
bool g_forced_off = false;
}  // namespace

void DeviceBackend::device_index_set(int index) {
  SM_CHECK(index == 0, "GPU " << index << " requested, but " << describe());
}

DeviceBackend& device_backend() {
  if constexpr (kernels::kCudaBuilt) {
    return cuda::backend_get();
  } else {
    static NoDeviceBackend none;
    return none;
  }
}

bool cuda_available() { return !g_forced_off && device_backend().available(); }
void cuda_force_off(bool off) { g_forced_off = off; }

Device device_select(const std::string& name, const std::string& who) {
  if (name == "cpu") {
    cuda_force_off(true);
    return Device::CPU;
  }
  SM_CHECK(name == "cuda", who << " --device '" << name << "': use cpu or cuda");
  SM_CHECK(kernels::kCudaBuilt,
           who << " --device cuda: this spinemark was built without CUDA (configure with -DSPINEMARK_CUDA=ON)");
  SM_CHECK(cuda_available(), who << " --device cuda: no usable CUDA device on this machine ("
                                 << device_backend().describe() << ")");
  return Device::CUDA;
}

}  // namespace sm
