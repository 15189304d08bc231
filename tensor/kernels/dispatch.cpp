// The kernel table and the checks of every dispatcher (see dispatch.h).
#include "tensor/kernels/dispatch.h"

#include <cstring>

namespace sm::kernels {

namespace {

// One row per kernel: which devices implement it. Every CPU kernel runs float32 and float64
// (float64 for the gradient checks); every CUDA kernel runs float32.
struct KernelRow {
  const char* name;
  bool cuda;  // has a CUDA twin
};

constexpr KernelRow kTable[] = {
    // elementwise.h
    {"relu_forward", true}, {"relu_backward", true}, {"add_forward", true}, {"add_relu_forward", true},
    {"add_relu_backward", true}, {"axpy", true}, {"scale", true}, {"sum", true}, {"sum_squares", true},
    // conv2d.h
    {"conv2d_forward", true}, {"conv2d_backward", true},
    // batchnorm.h
    {"batchnorm_forward_train", true}, {"batchnorm_forward_eval", true}, {"batchnorm_backward", true},
    // pooling.h
    {"max_pool2d_forward", true}, {"max_pool2d_backward", true}, {"global_avg_pool_forward", true},
    {"global_avg_pool_backward", true},
    // linear.h
    {"linear_forward", true}, {"linear_backward", true},
    // resize.h
    {"resize_bilinear_forward", true}, {"resize_bilinear_backward", true},
    // dsnt.h
    {"flat_softmax_forward", true}, {"flat_softmax_backward", true}, {"dsnt_forward", true}, {"dsnt_backward", true},
    {"gaussian_heatmaps", true},
    // losses.h
    {"euclidean_loss_forward", true}, {"euclidean_loss_backward", true}, {"js_forward", true}, {"js_backward", true},
    {"kl_forward", true}, {"kl_backward", true}, {"variance_forward", true}, {"variance_backward", true},
    {"elementwise_loss_forward", false}, {"elementwise_loss_backward", false},
    // optim.h
    {"sgd_step", true}, {"adam_step", true}, {"rmsprop_step", true},
};

const KernelRow* row_find(const char* op) {
  for (const KernelRow& r : kTable)
    if (std::strcmp(r.name, op) == 0) return &r;
  return nullptr;
}

}  // namespace

bool supports(const std::string& op, Device device, DType dtype) {
  const KernelRow* r = row_find(op.c_str());
  if (!r) return false;
  if (device == Device::CPU) return true;
  return kCudaBuilt && r->cuda && dtype == DType::F32;
}

std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (const KernelRow& r : kTable) names.push_back(r.name);
  return names;
}

Device kernel_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  SM_CHECK(row_find(op), "kernel '" << op << "' is not in the kernel table (tensor/kernels/dispatch.cpp)");
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
    if (d == Device::CUDA && !row_find(op)->cuda)
      SM_FAIL(op << ": has no CUDA kernel (CPU only); run it on CPU tensors");
    SM_FAIL(op << ": no " << device_name(d) << " kernel for " << dtype_name(dt) << " tensors (CUDA kernels run float32)");
  }
  return d;
}

}  // namespace sm::kernels

namespace sm::kernels {

void check_numel(const char* op, const Tensor& a, const Tensor& b) {
  SM_CHECK(a.numel() == b.numel(), op << ": " << a.str() << " and " << b.str() << " differ in size");
}

void check_numel(const char* op, const Tensor& t, int64_t n, const char* what) {
  SM_CHECK(t.numel() == n, op << ": " << what << " " << t.str() << " must hold " << n << " elements");
}

}  // namespace sm::kernels
