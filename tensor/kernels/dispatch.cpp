// The kernel table and the checks of every dispatcher (see dispatch.h).
#include "tensor/kernels/dispatch.h"

#include <ostream>

namespace sm::kernels {

namespace {

// One row per kernel of kernel_list.h, in KernelId order: its name and whether it has a CUDA
// twin. Every CPU kernel runs float32 and float64; every CUDA kernel runs float32.
struct KernelRow {
  const char* name;
  bool cuda;  // has a CUDA twin
};

constexpr KernelRow kTable[] = {
#define SM_KERNEL_ROW(name, has_cuda) {#name, has_cuda},
    SM_KERNEL_LIST(SM_KERNEL_ROW)
#undef SM_KERNEL_ROW
};

const KernelRow& row_of(KernelId op) { return kTable[static_cast<size_t>(op)]; }

}  // namespace

bool supports(KernelId op, Device device, DType dtype) {
  if (device == Device::CPU) return true;
  return kCudaBuilt && row_of(op).cuda && dtype == DType::F32;
}

const char* kernel_name(KernelId op) { return row_of(op).name; }

std::ostream& operator<<(std::ostream& os, KernelId op) { return os << kernel_name(op); }

Device kernel_device(KernelId op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
    } else {
      SM_CHECK(t->device() == first->device(),
               op << ": tensors on different devices, " << first->str() << " and " << t->str()
                  << "; move the module with to_device() and the inputs with .to() onto one device");
      SM_CHECK(t->dtype() == first->dtype(),
               op << ": tensors of different dtypes, " << first->str() << " and " << t->str());
    }
    SM_CHECK(t->is_contiguous(), op << ": kernels take contiguous tensors, got a strided view " << t->str());
  }
  SM_CHECK(first, op << ": no tensor given");
  const Device d = first->device();
  const DType dt = first->dtype();
  if (!supports(op, d, dt)) {
    if (d == Device::CUDA && !kCudaBuilt) SM_FAIL(op << ": this spinemark was built without CUDA");
    if (d == Device::CUDA && !row_of(op).cuda)
      SM_FAIL(op << ": has no CUDA kernel (CPU only); run it on CPU tensors");
    SM_FAIL(op << ": no " << device_name(d) << " kernel for " << dtype_name(dt) << " tensors (CUDA kernels run float32)");
  }
  return d;
}

}  // namespace sm::kernels

namespace sm::kernels {

void check_numel(KernelId op, const Tensor& a, const Tensor& b) {
  SM_CHECK(a.numel() == b.numel(), op << ": " << a.str() << " and " << b.str() << " differ in size");
}

void check_numel(KernelId op, const Tensor& t, int64_t n, const char* what) {
  SM_CHECK(t.numel() == n, op << ": " << what << " " << t.str() << " must hold " << n << " elements");
}

}  // namespace sm::kernels
