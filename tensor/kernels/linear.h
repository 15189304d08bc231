// Fully connected kernels (torch.nn.Linear): the contract. CPU: Eigen GEMM; CUDA: cuBLAS.
#pragma once
#include "tensor/tensor.h"

namespace sm::kernels {

// y (N, out) = x (N, in) · weightᵀ (weight (out, in)) + bias (out; may be undefined). Assigns y.
void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y);
// dx (N, in) += dy W, dweight (out, in) += dyᵀ x, dbias (out) += Σ_n dy. Each may be null. Adds.
void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor* dx, Tensor* dweight,
                     Tensor* dbias);

}  // namespace sm::kernels
