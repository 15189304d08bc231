// Losses for DSNT training (method.md §4). Every loss is per landmark, then averaged over the
// visible landmarks: `mask` is (N, C) with 1 for visible and 0 for missing landmarks (an
// undefined mask means all visible); with no visible landmark the loss is 0.
// Coordinates are normalised to (-1, 1); σ of the regularisers is in heatmap pixels.
#pragma once
#include "autograd/var.h"
#include "tensor/kernels/losses.h"

namespace sm {

// mean_visible ‖μ − t‖. mu: (N, C, 2), target: (N, C, 2). The gradient at zero distance is 0.
Var euclidean_loss(const Var& mu, const Tensor& target, const Tensor& mask = Tensor());

// mean_visible JS(P ‖ Q), Q = gaussian_heatmaps(target, H, W, σ). p: (N, C, H, W) heatmaps.
Var js_regularizer(const Var& p, const Tensor& target, double sigma, const Tensor& mask = Tensor());
// mean_visible KL(P ‖ Q), same Q.
Var kl_regularizer(const Var& p, const Tensor& target, double sigma, const Tensor& mask = Tensor());
// mean_visible (Var_x − σ²)² + (Var_y − σ²)², variances of P in heatmap pixels².
Var variance_regularizer(const Var& p, double sigma, const Tensor& mask = Tensor());

// Mean over the visible elements of (a − t)² and |a − t|. a: (N, C, D), mask (N, C). CPU only
// (a CUDA tensor fails with a message); the losses above also run on CUDA, where targets and
// masks given on the CPU are uploaded and the loss stays a () tensor on the device.
Var mse_loss(const Var& a, const Tensor& target, const Tensor& mask = Tensor());
Var l1_loss(const Var& a, const Tensor& target, const Tensor& mask = Tensor());

// The divergences' ε (method.md §4): keeps log finite where P or Q is 0.
constexpr double kDivergenceEps = kernels::kDivergenceEps;

}  // namespace sm
