// Elementwise kernels and reductions: the contract (see dispatch.h for how a kernel is built).
// Tensors of one call share device and dtype and are contiguous; sizes are element counts and
// must agree. "Assigns" overwrites an output; "adds" accumulates into it (every backward adds:
// the one contract of style.md rule 8). CPU: float32 and float64; CUDA: float32.
#pragma once
#include "tensor/tensor.h"

namespace sm::kernels {

// y = max(x, 0). Assigns y.
void relu_forward(const Tensor& x, Tensor& y);
// dx += dy · [y > 0] (y > 0 exactly where x > 0, so the output is all backward keeps). Adds.
void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx);

// y = a + b (the residual connection). Assigns y. Its backward is axpy into both inputs.
void add_forward(const Tensor& a, const Tensor& b, Tensor& y);
// y = max(a + b, 0) (the end of every ResNet block). Assigns y.
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y);
// g' = dy · [y > 0]; da += g', db += g'. Either may be null. Adds.
void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor* da, Tensor* db);

// y += alpha · x (gradient accumulation, optimizers). Adds.
void axpy(double alpha, const Tensor& x, Tensor& y);
// x *= alpha (gradient clipping). In place.
void scale(double alpha, Tensor& x);

// Σ x and Σ x², accumulated in double in a fixed order (reproducible bit for bit).
double sum(const Tensor& x);
double sum_squares(const Tensor& x);

}  // namespace sm::kernels
