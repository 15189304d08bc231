// DSNT losses (method.md §4): the graph nodes. Each checks the user's shapes, brings targets and
// masks to the input's device and dtype (they are usually built on the CPU), and makes one
// kernel call each way (tensor/kernels/losses.h, where the formulas and their gradients are).
// The loss is a () tensor on the input's device; its backward reads the upstream gradient there.
#include "layers/dsnt_losses.h"

#include "layers/dsnt.h"
#include "tensor/kernels/losses.h"

namespace sm {

namespace {

// t on `like`'s device and dtype, contiguous (undefined stays undefined).
Tensor to_like(const Tensor& t, const Tensor& like) {
  if (!t.defined()) return t;
  return t.contiguous().to(like.dtype()).to(like.device());
}

Tensor mask_prepare(const char* op, const Tensor& mask, const Tensor& input) {
  if (mask.defined())
    SM_CHECK(mask.shape() == Shape({input.size(0), input.size(1)}),
             op << ": mask must be " << shape_str({input.size(0), input.size(1)}) << ", got " << shape_str(mask.shape()));
  return to_like(mask, input);
}

Tensor loss_tensor(const Tensor& like) { return Tensor::empty({}, like.dtype(), like.device()); }  // ()

void check_targets(const char* op, const Var& p, const Tensor& target) {
  SM_CHECK(target.dim() == 3 && target.size(2) == 2 && p.value().dim() == 4 && target.size(0) == p.value().size(0) &&
               target.size(1) == p.value().size(1),
           op << ": targets " << shape_str(target.shape()) << " do not match heatmaps " << shape_str(p.value().shape()));
}

// The three heatmap terms share their plumbing: Q from the targets (JS, KL), the mask, one
// kernel pair.
enum class HeatmapLoss { Js, Kl, Variance };

Var heatmap_loss(const char* op, HeatmapLoss kind, const Var& p, const Tensor& target, double sigma, const Tensor& mask) {
  Tensor pc = p.value().contiguous();
  SM_CHECK(pc.dim() == 4, op << " expects (N, C, H, W) heatmaps, got " << shape_str(pc.shape()));
  Tensor m = mask_prepare(op, mask, pc);
  Tensor q;  // (N, C, H, W): JS and KL only
  if (kind != HeatmapLoss::Variance) q = gaussian_heatmaps(to_like(target, pc), pc.size(2), pc.size(3), sigma);
  Tensor loss = loss_tensor(pc);
  if (kind == HeatmapLoss::Js) kernels::js_forward(pc, q, m, loss);
  if (kind == HeatmapLoss::Kl) kernels::kl_forward(pc, q, m, loss);
  if (kind == HeatmapLoss::Variance) kernels::variance_forward(pc, sigma, m, loss);
  return var_make_result(loss, {p}, op, [kind, p, pc, q, m, sigma](const Tensor& g) {
    Tensor gc = g.contiguous();
    if (kind == HeatmapLoss::Js) kernels::js_backward(pc, q, m, gc, p.grad_buffer());
    if (kind == HeatmapLoss::Kl) kernels::kl_backward(pc, q, m, gc, p.grad_buffer());
    if (kind == HeatmapLoss::Variance) kernels::variance_backward(pc, sigma, m, gc, p.grad_buffer());
  });
}

}  // namespace

// ---- Euclidean ----------------------------------------------------------------------------------
// L = Σ_c w_c ‖μ_c − t_c‖;  ∂L/∂μ_c = w_c (μ_c − t_c) / ‖μ_c − t_c‖ (0 at zero distance).
Var euclidean_loss(const Var& mu, const Tensor& target, const Tensor& mask) {
  const char* op = "euclidean_loss";
  const Tensor& mv = mu.value();
  SM_CHECK(mv.dim() == 3 && mv.size(2) == 2, op << " expects (N, C, 2) coordinates, got " << shape_str(mv.shape()));
  SM_CHECK(target.shape() == mv.shape(), op << ": target " << shape_str(target.shape()) << " vs prediction " << shape_str(mv.shape()));
  Tensor muc = mv.contiguous(), t = to_like(target, muc), m = mask_prepare(op, mask, muc);
  Tensor loss = loss_tensor(muc);
  kernels::euclidean_loss_forward(muc, t, m, loss);
  return var_make_result(loss, {mu}, op, [mu, muc, t, m](const Tensor& g) {
    kernels::euclidean_loss_backward(muc, t, m, g.contiguous(), mu.grad_buffer());
  });
}

// ---- the heatmap regularisers (formulas in tensor/kernels/losses.h) ---------------------------
Var js_regularizer(const Var& p, const Tensor& target, double sigma, const Tensor& mask) {
  check_targets("js_regularizer", p, target);
  return heatmap_loss("js_regularizer", HeatmapLoss::Js, p, target, sigma, mask);
}

Var kl_regularizer(const Var& p, const Tensor& target, double sigma, const Tensor& mask) {
  check_targets("kl_regularizer", p, target);
  return heatmap_loss("kl_regularizer", HeatmapLoss::Kl, p, target, sigma, mask);
}

Var variance_regularizer(const Var& p, double sigma, const Tensor& mask) {
  return heatmap_loss("variance_regularizer", HeatmapLoss::Variance, p, Tensor(), sigma, mask);
}

// ---- MSE and L1 -------------------------------------------------------------------------------
// L = Σ_c w_c (1/D) Σ_d f(a_cd − t_cd): the mean over visible elements. CPU only: the kernel
// layer refuses CUDA tensors with a message (DSNT training does not use these).
namespace {
Var elementwise_loss(const char* op, kernels::ElementwiseLoss kind, const Var& a, const Tensor& target,
                     const Tensor& mask) {
  const Tensor& av = a.value();
  SM_CHECK(av.dim() == 3, op << " expects (N, C, D), got " << shape_str(av.shape()));
  SM_CHECK(target.shape() == av.shape(), op << ": target " << shape_str(target.shape()) << " vs prediction " << shape_str(av.shape()));
  Tensor ac = av.contiguous(), t = to_like(target, ac), m = mask_prepare(op, mask, ac);
  Tensor loss = loss_tensor(ac);
  kernels::elementwise_loss_forward(kind, ac, t, m, loss);
  return var_make_result(loss, {a}, op, [kind, a, ac, t, m](const Tensor& g) {
    kernels::elementwise_loss_backward(kind, ac, t, m, g.contiguous(), a.grad_buffer());
  });
}
}  // namespace

Var mse_loss(const Var& a, const Tensor& target, const Tensor& mask) {
  return elementwise_loss("mse_loss", kernels::ElementwiseLoss::Mse, a, target, mask);
}

Var l1_loss(const Var& a, const Tensor& target, const Tensor& mask) {
  return elementwise_loss("l1_loss", kernels::ElementwiseLoss::L1, a, target, mask);
}

}  // namespace sm
