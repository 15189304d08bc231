// DSNT (Nibali et al. 2018, arXiv 1801.07372; method.md §4): flat softmax over each heatmap
// channel, then the expected coordinates on a fixed grid of pixel centres in (-1, 1).
// Always float32 or float64, never half precision (the ε of the divergences underflows).
#pragma once
#include "autograd/var.h"

namespace sm {

// P = softmax(Z) over the H·W cells of each (n, c) channel, max subtracted first.
// z: (N, C, H, W) logits -> (N, C, H, W) probabilities.
Var flat_softmax(const Var& z);

// μ = (Σ P_ij x_j, Σ P_ij y_i) with x_j = (2j+1)/W - 1, y_i = (2i+1)/H - 1.
// p: (N, C, H, W) normalised heatmaps -> (N, C, 2), order (x, y).
Var dsnt(const Var& p);

// Pixel <-> normalised coordinate along an axis of `size` cells: c = (2p+1)/size - 1.
inline double dsnt_normalise(double pixel, int64_t size) { return (2.0 * pixel + 1.0) / double(size) - 1.0; }
inline double dsnt_denormalise(double c, int64_t size) { return ((c + 1.0) * double(size) - 1.0) / 2.0; }

// Discretised Gaussians Q (N, C, H, W), one per target, centred at the normalised targets
// (N, C, 2) with σ in heatmap pixels, normalised to sum 1 over the map (so truncated at the
// border). Same dtype and device as `centres` (on CUDA: float32, computed on the device).
Tensor gaussian_heatmaps(const Tensor& centres, int64_t height, int64_t width, double sigma);

// Per-channel spread √(Var_x + Var_y) in heatmap pixels: the landmark confidence of method.md
// §4 (smaller = more confident). p: (N, C, H, W) on any device -> (N, C) float32 on the CPU.
// No gradient.
Tensor heatmap_spread(const Tensor& p);

}  // namespace sm
