// The CUDA twins of the core engine's ops: a plain C++ API on raw device pointers (float32,
// contiguous, NCHW) with sizes and an explicit stream (nullptr = the backend's stream). Every
// function checks its sizes before any launch and throws sm::Error on a failed CUDA call.
// These are the CUDA twins of the kernel contracts in tensor/kernels/*.h (the dispatchers there
// call them; nothing else should): every backward ADDS into the gradients it is given (input and
// parameter gradients alike); a null gradient pointer means "not needed". Reference: the CPU
// twins in tensor/kernels/cpu/ (same formulas, same conventions).
// Streams: scratch memory (workspaces, partial sums) is recycled in the order of the backend's
// stream; an op given another stream must be followed by a synchronisation of that stream before
// the next op runs on the backend's stream.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/backend.h"
#include "tensor/kernels/conv_geometry.h"

namespace sm::cuda {

// ---- elementwise and reductions (cuda/elementwise.cu) -------------------------------------------
void fill_f32(float* x, int64_t n, float value, Stream s = nullptr);
void fill_f64(double* x, int64_t n, double value, Stream s = nullptr);
void axpy(int64_t n, float alpha, const float* x, float* y, Stream s = nullptr);  // y += alpha x
void scale(int64_t n, float alpha, float* x, Stream s = nullptr);                 // x *= alpha
// Σ x and Σ x², accumulated in double in a fixed order (deterministic); waits for the stream.
double sum(int64_t n, const float* x, Stream s = nullptr);
double sum_squares(int64_t n, const float* x, Stream s = nullptr);

// ReLU. x, y, dy, dx: (n). Backward: dx += dy [x > 0].
void relu_forward(int64_t n, const float* x, float* y, Stream s = nullptr);
void relu_backward(int64_t n, const float* x, const float* dy, float* dx, Stream s = nullptr);
// Residual add: y = a + b; backward da += dy, db += dy (use axpy). All (n).
void add_forward(int64_t n, const float* a, const float* b, float* y, Stream s = nullptr);
// y = relu(a + b); backward: g' = dy [y > 0]; da += g', db += g' (either may be null).
void add_relu_forward(int64_t n, const float* a, const float* b, float* y, Stream s = nullptr);
void add_relu_backward(int64_t n, const float* y, const float* dy, float* da, float* db, Stream s = nullptr);

// ---- convolution through cuDNN (cuda/conv2d.cpp) -------------------------------------------
struct ConvShape {
  int64_t n = 0, c = 0, h = 0, w = 0;  // x (N, C, H, W)
  int64_t k = 0, kh = 1, kw = 1;       // weight (K, C, kh, kw)
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t out_h() const { return kernels::conv_out_size(h, kh, stride_h, pad_h, dil_h); }
  int64_t out_w() const { return kernels::conv_out_size(w, kw, stride_w, pad_w, dil_w); }
};
// y (N, K, Ho, Wo) = conv(x, weight) + bias; bias (K) may be null.
void conv2d_forward(const ConvShape& cs, const float* x, const float* weight, const float* bias, float* y,
                    Stream s = nullptr);
// dx (N, C, H, W) += ∂/∂x, dweight (K, C, kh, kw) += ∂/∂w, dbias (K) += Σ dy; each may be null.
void conv2d_backward(const ConvShape& cs, const float* x, const float* weight, const float* dy, float* dx,
                     float* dweight, float* dbias, Stream s = nullptr);
// The algorithms cached for a shape in the current mode (strict/TF32, deterministic), for tests
// and logs: cuDNN's algorithm numbers (-1: not chosen yet, i.e. that direction has not run) and
// the math type each runs with, as cuDNN reported it: "fma" (float32 only; strict mode),
// "tensor_op" (TF32 tensor cores; the default mode on compute capability >= 8.0, where the
// measured choice takes them) or "default" (cuDNN's own pick, which on an H100 meant FMA kernels).
struct ConvAlgoChoice {
  int fwd = -1, bwd_data = -1, bwd_filter = -1;
  const char *fwd_math = "", *bwd_data_math = "", *bwd_filter_math = "";
};
ConvAlgoChoice conv_algo_chosen(const ConvShape& cs);
// Number of shapes whose algorithms are cached (for tests and logs); clear_cache forgets them.
size_t conv_algo_cache_size();
void conv_algo_cache_clear();

// ---- BatchNorm2d (cuda/batchnorm.cu) -------------------------------------------------------------
// x, y, dy, dx: (N, C, H, W); weight, bias, running_*, save_*: (C). weight/bias null = 1/0.
// Training: batch mean and biased variance; running stats (when not null) updated in place as
// PyTorch: r = (1 - momentum) r + momentum · stat, with the unbiased variance (× M/(M-1),
// M = N·H·W > 1). save_mean and save_invstd = 1/sqrt(var + eps) are kept for backward.
void batchnorm_forward_train(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const float* weight,
                             const float* bias, float* running_mean, float* running_var, double momentum,
                             double eps, float* y, float* save_mean, float* save_invstd, Stream s = nullptr);
// Eval: y = (x − running_mean)/sqrt(running_var + eps) · weight + bias. When save_mean and
// save_invstd are not null (a backward follows), a copy of the running mean and
// 1/sqrt(running_var + eps) are written there.
void batchnorm_forward_eval(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const float* weight,
                            const float* bias, const float* running_mean, const float* running_var, double eps,
                            float* y, float* save_mean, float* save_invstd, Stream s = nullptr);
// Backward with the saved statistics μ, s: dγ += Σ g x̂, dβ += Σ g, and dx += γ s (g − Σg/M −
// x̂ Σ(g x̂)/M) (training) or γ s g (eval: the statistics are constants).
void batchnorm_backward(bool training, int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const float* weight,
                        const float* save_mean, const float* save_invstd, const float* dy, float* dx, float* dweight,
                        float* dbias, Stream s = nullptr);

// ---- pooling (cuda/pooling.cu) ------------------------------------------------------------------
struct PoolShape {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t kernel = 2, stride = 2, pad = 0;
  int64_t out_h() const { return kernels::conv_out_size(h, kernel, stride, pad, 1); }  // dilation 1
  int64_t out_w() const { return kernels::conv_out_size(w, kernel, stride, pad, 1); }
};
// y (N, C, Ho, Wo); argmax (N, C, Ho, Wo) int32 flat index into the (H, W) plane of the first
// maximum in row-major window order (as the CPU), or null for inference.
void max_pool2d_forward(const PoolShape& ps, const float* x, float* y, int32_t* argmax, Stream s = nullptr);
// dx (N, C, H, W) += scatter(dy) through argmax, gathered per input cell (no atomics).
void max_pool2d_backward(const PoolShape& ps, const int32_t* argmax, const float* dy, float* dx, Stream s = nullptr);
// y (N, C) = mean over H, W of x (N, C, H, W); backward dx += dy / (H W).
void global_avg_pool_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y, Stream s = nullptr);
void global_avg_pool_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, float* dx, Stream s = nullptr);

// ---- Linear through cuBLAS (cuda/linear.cpp) --------------------------------------------
// x (N, in), weight (out, in), bias (out) or null -> y (N, out) = x Wᵀ + b.
void linear_forward(int64_t n, int64_t in, int64_t out, const float* x, const float* weight, const float* bias,
                    float* y, Stream s = nullptr);
// dx += dy W, dweight += dyᵀ x, dbias += Σ_n dy (each may be null).
void linear_backward(int64_t n, int64_t in, int64_t out, const float* x, const float* weight, const float* dy,
                     float* dx, float* dweight, float* dbias, Stream s = nullptr);
// Per-channel sums (deterministic): out[c] += Σ_{n, i} x[(n C + c) HW + i]; x (N, C, HW).
void channel_sum_add(int64_t n, int64_t c, int64_t hw, const float* x, float* out, Stream s = nullptr);

// ---- bilinear resize, align_corners=False (cuda/resize.cu) -------------------------------------
// x (N, C, H, W) -> y (N, C, Ho, Wo); backward dx += transpose (gathered per input cell).
void resize_bilinear_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                             const float* x, float* y, Stream s = nullptr);
void resize_bilinear_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                              const float* dy, float* dx, Stream s = nullptr);

// ---- DSNT head (cuda/dsnt.cu) and losses (cuda/losses.cu), always float32 (method.md §4) -------
// `channels` = N·C heatmaps of h × w cells each.
// P = softmax over each channel's h·w cells (max subtracted). z, p, dp, dz: (N, C, H, W).
void flat_softmax_forward(int64_t channels, int64_t h, int64_t w, const float* z, float* p, Stream s = nullptr);
// dz += P (G − Σ P G).
void flat_softmax_backward(int64_t channels, int64_t h, int64_t w, const float* p, const float* dp, float* dz,
                           Stream s = nullptr);
// mu (N, C, 2) = (Σ P x_j, Σ P y_i), x_j = (2j+1)/w − 1; backward dp += g_x x_j + g_y y_i.
void dsnt_forward(int64_t channels, int64_t h, int64_t w, const float* p, float* mu, Stream s = nullptr);
void dsnt_backward(int64_t channels, int64_t h, int64_t w, const float* dmu, float* dp, Stream s = nullptr);
// q (N, C, H, W): normalised Gaussians at the normalised centres (N, C, 2), σ in heatmap pixels
// (uniform when every cell underflows), as gaussian_heatmaps on the CPU.
void gaussian_heatmaps(int64_t channels, int64_t h, int64_t w, const float* centres, double sigma, float* q,
                       Stream s = nullptr);
// Losses: a scalar `loss` (1 float, device) = Σ_c w_c f_c with w_c = mask_c / Σ mask (mask (N, C)
// or null = all visible; 0 when nothing is visible). Backward: the upstream gradient `dloss`
// (1 float, device) times ∂/∂input is ADDED into the input's gradient.
// Euclidean: f_c = ‖μ_c − t_c‖, mu/target (N, C, 2); gradient 0 at zero distance.
void euclidean_loss_forward(int64_t channels, const float* mu, const float* target, const float* mask, float* loss,
                            Stream s = nullptr);
void euclidean_loss_backward(int64_t channels, const float* mu, const float* target, const float* mask,
                             const float* dloss, float* dmu, Stream s = nullptr);
// JS(P ‖ Q) and KL(P ‖ Q) with ε = 1e-24; q from gaussian_heatmaps.
void js_forward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask,
                float* loss, Stream s = nullptr);
void js_backward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask,
                 const float* dloss, float* dp, Stream s = nullptr);
void kl_forward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask,
                float* loss, Stream s = nullptr);
void kl_backward(int64_t channels, int64_t h, int64_t w, const float* p, const float* q, const float* mask,
                 const float* dloss, float* dp, Stream s = nullptr);
// (Var_x − σ²)² + (Var_y − σ²)², variances in heatmap pixels².
void variance_forward(int64_t channels, int64_t h, int64_t w, const float* p, double sigma, const float* mask,
                      float* loss, Stream s = nullptr);
void variance_backward(int64_t channels, int64_t h, int64_t w, const float* p, double sigma, const float* mask,
                       const float* dloss, float* dp, Stream s = nullptr);

// ---- fused optimizer steps on flat buffers (cuda/optim.cu; train/optim/optimizer.h formulas) ---------
// p, g and the moments: (n). `step` counts from 1 (the step being taken).
// SGD: d = g + wd p; b = d (first step) or momentum b + (1 − dampening) d; d = d + momentum b
// (Nesterov) or b; p −= lr d. buf may be null when momentum == 0.
void sgd_step(int64_t n, float* p, const float* g, float* buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, int64_t step, Stream s = nullptr);
// Adam (decoupled = false: L2 into g) / AdamW (decoupled: p *= 1 − lr wd first).
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool decoupled, int64_t step, Stream s = nullptr);
// RMSprop; buf (momentum) may be null when momentum == 0, grad_avg null unless centered.
void rmsprop_step(int64_t n, float* p, const float* g, float* square_avg, float* buf, float* grad_avg, double lr,
                  double alpha, double eps, double weight_decay, double momentum, bool centered,
                  Stream s = nullptr);

}  // namespace sm::cuda
