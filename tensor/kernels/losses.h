// Loss kernels for DSNT training (method.md §4): the contract. Every loss is a () tensor on the
// input's device, L = Σ_c w_c f_c with w_c = mask_c / Σ mask (mask (N, C), undefined = all
// visible; L = 0 when nothing is visible). Backward reads the upstream gradient from the ()
// tensor `dloss` on the same device (no host round trip) and ADDS dloss · ∂L/∂input.
// Targets, Q and masks have the input's device and dtype (the layer converts them).
#pragma once
#include "tensor/tensor.h"

namespace sm::kernels {

// The divergences' ε: keeps log finite where P or Q is 0.
constexpr double kDivergenceEps = 1e-24;

// f_c = ‖μ_c − t_c‖; mu, target (N, C, 2). Gradient 0 at zero distance.
void euclidean_loss_forward(const Tensor& mu, const Tensor& target, const Tensor& mask, Tensor& loss);
void euclidean_loss_backward(const Tensor& mu, const Tensor& target, const Tensor& mask, const Tensor& dloss,
                             Tensor& dmu);

// f_c = JS(P_c ‖ Q_c) = ½ KL(P‖M) + ½ KL(Q‖M), M = (P+Q)/2; p, q (N, C, H, W).
// ∂/∂P = ½ [log((P+ε)/(M+ε)) + P/(P+ε) − M/(M+ε)].
void js_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss);
void js_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp);
// f_c = KL(P_c ‖ Q_c) = Σ P (log(P+ε) − log(Q+ε)); ∂/∂P = log(P+ε) − log(Q+ε) + P/(P+ε).
void kl_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss);
void kl_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp);
// f_c = (V_x − σ²)² + (V_y − σ²)², variances of P_c in heatmap pixels²;
// ∂/∂P_ij = 2(V_x − σ²)(j² − 2μx j) + 2(V_y − σ²)(i² − 2μy i).
void variance_forward(const Tensor& p, double sigma, const Tensor& mask, Tensor& loss);
void variance_backward(const Tensor& p, double sigma, const Tensor& mask, const Tensor& dloss, Tensor& dp);

// f_c = (1/D) Σ_d e(a_cd − t_cd) with e = squared (MSE) or absolute (L1) error; a, target
// (N, C, D). ∂e: 2e (MSE), sign(e) with 0 at 0 (L1). CPU only (DSNT training does not use them).
enum class ElementwiseLoss { Mse, L1 };
void elementwise_loss_forward(ElementwiseLoss kind, const Tensor& a, const Tensor& target, const Tensor& mask,
                              Tensor& loss);
void elementwise_loss_backward(ElementwiseLoss kind, const Tensor& a, const Tensor& target, const Tensor& mask,
                               const Tensor& dloss, Tensor& da);

}  // namespace sm::kernels
