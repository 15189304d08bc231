// The one list of the engine's kernels: every kernel declared in this folder's headers, with
// whether it has a CUDA twin (cuda/ops_cuda.h). Everything else is generated from it with the
// X-macro idiom (X(name, has_cuda) expanded by each user): the KernelId enum the dispatchers pass
// to kernel_device(), and the name/CUDA table of dispatch.cpp. A misspelt kernel is therefore a
// compile error, not a run-time "not in the table".
//
// Every CPU kernel runs float32 and float64 (float64 for the gradient checks); every CUDA kernel
// runs float32. Adding a kernel: one X(...) line here, `false` while it has no CUDA twin (CUDA
// tensors then get a clear "has no CUDA kernel" error; see docs/kernels.md).
#pragma once

// clang-format off
#define SM_KERNEL_LIST(X)                                                                        \
  /* elementwise.h */                                                                           \
  X(relu_forward, true) X(relu_backward, true) X(add_forward, true) X(add_relu_forward, true)   \
  X(add_relu_backward, true) X(axpy, true) X(scale, true) X(sum, true) X(sum_squares, true)      \
  /* conv2d.h */                                                                                \
  X(conv2d_forward, true) X(conv2d_backward, true)                                              \
  /* batchnorm.h */                                                                             \
  X(batchnorm_forward_train, true) X(batchnorm_forward_eval, true) X(batchnorm_backward, true)  \
  /* pooling.h */                                                                               \
  X(max_pool2d_forward, true) X(max_pool2d_backward, true) X(global_avg_pool_forward, true)     \
  X(global_avg_pool_backward, true)                                                             \
  /* linear.h */                                                                                \
  X(linear_forward, true) X(linear_backward, true)                                              \
  /* resize.h */                                                                                \
  X(resize_bilinear_forward, true) X(resize_bilinear_backward, true)                            \
  /* dsnt.h */                                                                                  \
  X(flat_softmax_forward, true) X(flat_softmax_backward, true) X(dsnt_forward, true)            \
  X(dsnt_backward, true) X(gaussian_heatmaps, true)                                             \
  /* losses.h */                                                                                \
  X(euclidean_loss_forward, true) X(euclidean_loss_backward, true) X(js_forward, true)          \
  X(js_backward, true) X(kl_forward, true) X(kl_backward, true) X(variance_forward, true)       \
  X(variance_backward, true) X(elementwise_loss_forward, false)                                 \
  X(elementwise_loss_backward, false)                                                           \
  /* optim.h */                                                                                 \
  X(sgd_step, true) X(adam_step, true) X(rmsprop_step, true)
// clang-format on

namespace sm::kernels {

// One id per kernel, in list order (the value indexes the table of dispatch.cpp).
enum class KernelId {
#define SM_KERNEL_ENUM(name, has_cuda) name,
  SM_KERNEL_LIST(SM_KERNEL_ENUM)
#undef SM_KERNEL_ENUM
};

}  // namespace sm::kernels
