// Bilinear resize kernels, align_corners = False (PyTorch's upsample_bilinear2d), with the taps
// of tensor/bilinear_taps.h on both devices. The contract.
#pragma once
#include "tensor/tensor.h"

namespace sm::kernels {

// y (N, C, Ho, Wo) = bilinear resize of x (N, C, H, W); sizes from the shapes. Assigns y.
void resize_bilinear_forward(const Tensor& x, Tensor& y);
// dx (N, C, H, W) += the transpose of the forward applied to dy (N, C, Ho, Wo). Adds.
void resize_bilinear_backward(const Tensor& dy, Tensor& dx);

}  // namespace sm::kernels
