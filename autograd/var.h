// A dynamic autograd graph. A Var is a tensor value plus (when it needs a gradient) its
// gradient and the node that produced it. Ops are written as: forward code that builds the
// output value, then `var_make_result(value, {inputs}, "op", backward)` where backward is a
// lambda that captures only what it needs and ADDS each input's gradient (the one contract:
// input gradients accumulate). backward() sorts the graph iteratively (no recursion, reused
// nodes handled once) and runs the nodes in reverse topological order.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sm {

class Var;
struct Node;

struct VarData {
  Tensor value;
  Tensor grad;  // undefined until something flows in; accumulated with +=
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::string name;
  ~VarData();  // tears the graph behind it down iteratively (no recursion per node)
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return d_ != nullptr; }
  const Tensor& value() const { return d_->value; }
  Tensor& value_mut() { return d_->value; }  // for optimizers and loaders: in-place updates
  Tensor& grad() { return d_->grad; }
  const Tensor& grad() const { return d_->grad; }
  bool requires_grad() const { return d_ && d_->requires_grad; }
  void requires_grad_set(bool on) { d_->requires_grad = on; }
  const std::shared_ptr<Node>& grad_fn() const { return d_->grad_fn; }
  const std::string& name() const { return d_->name; }
  const Shape& shape() const { return d_->value.shape(); }
  int64_t size(int64_t dim) const { return d_->value.size(dim); }
  VarData* data_ptr() const { return d_.get(); }
  long use_count() const { return d_.use_count(); }  // handles sharing this Var

  // Adds g into this Var's gradient (allocating zeros first). No-op unless requires_grad.
  void grad_accumulate(const Tensor& g) const;
  // The gradient buffer itself, allocated as zeros (on the value's device) on first use, for
  // backward kernels that add into it in place. Requires requires_grad().
  Tensor& grad_buffer() const;
  void grad_zero() const;     // keeps the buffer, fills 0
  void grad_release() const;  // drops the buffer

 private:
  std::shared_ptr<VarData> d_;
  friend Var var_make_result(Tensor, std::vector<Var>, const char*, std::function<void(const Tensor&)>);
};

// v's gradient buffer (zeros on first use) when v is defined and needs a gradient, else null:
// what a backward kernel's optional gradient outputs take (tensor/kernels/*.h).
Tensor* grad_target(const Var& v);

// Backward of one node: receives the output's gradient, adds into the inputs' gradients.
using BackwardFn = std::function<void(const Tensor& grad_output)>;

struct Node {
  const char* op_name;
  std::vector<Var> inputs;  // keeps the graph alive while the output is
  BackwardFn backward;
};

// Wraps the result of an op. When grad mode is on and an input requires a gradient, the result
// records a Node; `backward` may be null for inference-only ops, and then building a graph
// through it fails at once with the op's name.
Var var_make_result(Tensor value, std::vector<Var> inputs, const char* op_name, BackwardFn backward);

// Runs backpropagation from `root`. With no seed, root must have one element and is seeded with
// 1; otherwise seed has root's shape. The graph is kept (Var gradients accumulate over calls).
void backward(const Var& root, const Tensor& seed = Tensor());

// Grad mode (thread-local): off inside a NoGradGuard's scope; ops then record nothing.
bool grad_mode_enabled();
struct NoGradGuard {
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
 private:
  bool prev_;
};

}  // namespace sm
