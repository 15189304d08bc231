// Checks for every CUDA runtime, cuBLAS and cuDNN call and every kernel launch (style.md rule 13):
// a failure throws sm::Error naming the file:line of the call. Internal to cuda/: this header
// includes the CUDA headers, so nothing outside cuda/ includes it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "tensor/check.h"

namespace sm::cuda {
const char* cublas_status_name(cublasStatus_t s);
}  // namespace sm::cuda

#define SM_CUDA_CHECK(expr)                                                                   \
  do {                                                                                        \
    const cudaError_t sm_cuda_err_ = (expr);                                                  \
    if (sm_cuda_err_ != cudaSuccess)                                                          \
      SM_FAIL("CUDA call " << #expr << " failed: " << cudaGetErrorName(sm_cuda_err_) << " ("  \
                           << cudaGetErrorString(sm_cuda_err_) << ")");                      \
  } while (0)

#define SM_CUBLAS_CHECK(expr)                                                                  \
  do {                                                                                         \
    const cublasStatus_t sm_cublas_st_ = (expr);                                               \
    if (sm_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                \
      SM_FAIL("cuBLAS call " << #expr << " failed: " << ::sm::cuda::cublas_status_name(sm_cublas_st_)); \
  } while (0)

#define SM_CUDNN_CHECK(expr)                                                                   \
  do {                                                                                         \
    const cudnnStatus_t sm_cudnn_st_ = (expr);                                                 \
    if (sm_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                  \
      SM_FAIL("cuDNN call " << #expr << " failed: " << cudnnGetErrorString(sm_cudnn_st_));     \
  } while (0)

// After every <<<>>>: launch errors (bad configuration, no kernel image for this GPU) surface here.
#define SM_LAUNCH_CHECK(kernel_name)                                                           \
  do {                                                                                         \
    const cudaError_t sm_launch_err_ = cudaGetLastError();                                     \
    if (sm_launch_err_ != cudaSuccess)                                                         \
      SM_FAIL("kernel " << kernel_name << " failed to launch: " << cudaGetErrorName(sm_launch_err_) \
                        << " (" << cudaGetErrorString(sm_launch_err_) << ")");                 \
  } while (0)
