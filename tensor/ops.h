// Elementwise ops and reductions on plain tensors (no autograd). Same dtype and shape on both
// sides; float32 or float64; CPU here, CUDA through the backend when the tensors live there.
#pragma once
#include "tensor/tensor.h"

namespace sm {

Tensor tensor_add(const Tensor& a, const Tensor& b);            // a + b
Tensor tensor_sub(const Tensor& a, const Tensor& b);            // a - b
Tensor tensor_mul(const Tensor& a, const Tensor& b);            // a * b (elementwise)
Tensor tensor_scale(const Tensor& a, double s);                 // s * a
void tensor_add_(Tensor& dst, const Tensor& src);               // dst += src
void tensor_axpy_(Tensor& dst, double alpha, const Tensor& src);  // dst += alpha * src
void tensor_scale_(Tensor& dst, double s);                      // dst *= s

double tensor_sum(const Tensor& a);   // in double, fixed order
double tensor_mean(const Tensor& a);
double tensor_dot(const Tensor& a, const Tensor& b);
double tensor_sum_squares(const Tensor& a);
double tensor_max_abs(const Tensor& a);
double tensor_max_abs_diff(const Tensor& a, const Tensor& b);
bool tensor_all_finite(const Tensor& a);

}  // namespace sm
