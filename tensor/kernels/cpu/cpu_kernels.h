// The CPU twins of the kernels: the same signatures as the contracts in tensor/kernels/*.h
// (read the contracts there), in namespace sm::cpu; float32 and float64 (dispatch_float). The
// dispatchers have already checked devices, dtypes, contiguity and buffer sizes. They are the
// reference implementations: every CUDA twin is tested against them (tests/test_ops.cpp).
// Multi-threaded with OpenMP; the conv kernels read their threading from exec_context().
#pragma once
#include "tensor/kernels/batchnorm.h"
#include "tensor/kernels/conv2d.h"
#include "tensor/kernels/losses.h"
#include "tensor/kernels/optim.h"
#include "tensor/kernels/pooling.h"

namespace sm::cpu {

// elementwise.cpp
void relu_forward(const Tensor& x, Tensor& y);
void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx);
void add_forward(const Tensor& a, const Tensor& b, Tensor& y);
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y);
void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor* da, Tensor* db);
void axpy(double alpha, const Tensor& x, Tensor& y);
void scale(double alpha, Tensor& x);
double sum(const Tensor& x);
double sum_squares(const Tensor& x);

// conv2d.cpp
// relu: y = max(0, ·) after the bias; cache: prepared weights (created here when *cache is empty).
void conv2d_forward(const kernels::Conv2dGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    Tensor& y, bool relu = false, std::shared_ptr<ConvWeightCache>* cache = nullptr);
void conv2d_backward(const kernels::Conv2dGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& dy,
                     Tensor* dx, Tensor* dweight, Tensor* dbias);

// batchnorm.cpp (`saved` is allocated by the dispatcher; eval fills it only when not null)
void batchnorm_forward_train(const kernels::BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, Tensor* running_mean, Tensor* running_var, double momentum, double eps,
                             Tensor& y, kernels::BatchNormSaved& saved);
void batchnorm_forward_eval(const kernels::BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                            const Tensor& bias, const Tensor& running_mean, const Tensor& running_var, double eps,
                            Tensor& y, kernels::BatchNormSaved* saved);
void batchnorm_backward(const kernels::BatchNormGeometry& g, const Tensor& x, const Tensor& weight,
                        const kernels::BatchNormSaved& saved, const Tensor& dy, Tensor* dx, Tensor* dweight,
                        Tensor* dbias);

// pooling.cpp (argmax: int32 (N, C, Ho, Wo) or null when no backward follows)
void max_pool2d_forward(const kernels::Pool2dGeometry& g, const Tensor& x, Tensor& y, int32_t* argmax);
void max_pool2d_backward(const kernels::Pool2dGeometry& g, const int32_t* argmax, const Tensor& dy, Tensor& dx);
void global_avg_pool_forward(const Tensor& x, Tensor& y);
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);

// linear.cpp
void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y);
void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor* dx, Tensor* dweight,
                     Tensor* dbias);

// resize.cpp
void resize_bilinear_forward(const Tensor& x, Tensor& y);
void resize_bilinear_backward(const Tensor& dy, Tensor& dx);

// dsnt.cpp
void flat_softmax_forward(const Tensor& z, Tensor& p);
void flat_softmax_backward(const Tensor& p, const Tensor& dp, Tensor& dz);
void dsnt_forward(const Tensor& p, Tensor& mu);
void dsnt_backward(const Tensor& dmu, Tensor& dp);
void gaussian_heatmaps(const Tensor& centres, double sigma, Tensor& q);

// losses.cpp
void euclidean_loss_forward(const Tensor& mu, const Tensor& target, const Tensor& mask, Tensor& loss);
void euclidean_loss_backward(const Tensor& mu, const Tensor& target, const Tensor& mask, const Tensor& dloss,
                             Tensor& dmu);
void js_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss);
void js_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp);
void kl_forward(const Tensor& p, const Tensor& q, const Tensor& mask, Tensor& loss);
void kl_backward(const Tensor& p, const Tensor& q, const Tensor& mask, const Tensor& dloss, Tensor& dp);
void variance_forward(const Tensor& p, double sigma, const Tensor& mask, Tensor& loss);
void variance_backward(const Tensor& p, double sigma, const Tensor& mask, const Tensor& dloss, Tensor& dp);
void elementwise_loss_forward(kernels::ElementwiseLoss kind, const Tensor& a, const Tensor& target, const Tensor& mask,
                              Tensor& loss);
void elementwise_loss_backward(kernels::ElementwiseLoss kind, const Tensor& a, const Tensor& target,
                               const Tensor& mask, const Tensor& dloss, Tensor& da);

// optim.cpp
void sgd_step(const kernels::SgdStep& s, Tensor& p, const Tensor& g, Tensor* buf);
void adam_step(const kernels::AdamStep& s, Tensor& p, const Tensor& g, Tensor& m, Tensor& v);
void rmsprop_step(const kernels::RmspropStep& s, Tensor& p, const Tensor& g, Tensor& square_avg, Tensor* buf,
                  Tensor* grad_avg);

}  // namespace sm::cpu
