// DSNT kernels (Nibali et al. 2018; method.md §4): flat softmax over each heatmap, the expected
// coordinates on the grid of pixel centres in (−1, 1), and the Gaussian targets. The contract.
// Heatmaps are (N, C, H, W): N·C channels of H·W cells each. Never half precision.
#pragma once
#include "tensor/tensor.h"

namespace sm::kernels {

// P = softmax over each channel's H·W cells of the logits Z (max subtracted). Assigns p.
void flat_softmax_forward(const Tensor& z, Tensor& p);
// dz += P (G − Σ P G), G = dp (the softmax Jacobian diag(P) − P Pᵀ applied to G). Adds.
void flat_softmax_backward(const Tensor& p, const Tensor& dp, Tensor& dz);

// mu (N, C, 2) = (Σ P x_j, Σ P y_i), x_j = (2j+1)/W − 1, y_i = (2i+1)/H − 1. Assigns mu.
void dsnt_forward(const Tensor& p, Tensor& mu);
// dp (N, C, H, W) += g_x x_j + g_y y_i with g = dmu (N, C, 2) (the expectation is linear). Adds.
void dsnt_backward(const Tensor& dmu, Tensor& dp);

// q (N, C, H, W): Gaussians of σ heatmap pixels at the normalised centres (N, C, 2), each
// normalised to sum 1 over the map (a centre so far outside that every cell underflows gives a
// uniform map). Assigns q.
void gaussian_heatmaps(const Tensor& centres, double sigma, Tensor& q);

}  // namespace sm::kernels
