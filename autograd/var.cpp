// Var, graph recording and the iterative backward pass (see var.h).
#include "autograd/var.h"

#include <unordered_set>

#include "tensor/ops.h"

namespace sm {

namespace {
thread_local bool t_grad_mode = true;
}

bool grad_mode_enabled() { return t_grad_mode; }
NoGradGuard::NoGradGuard() : prev_(t_grad_mode) { t_grad_mode = false; }
NoGradGuard::~NoGradGuard() { t_grad_mode = prev_; }

// Releasing the last Var of a long chain would otherwise destroy Node -> inputs -> VarData ->
// Node ... recursively, one stack frame group per op, and overflow on deep graphs. Instead each
// node about to die hands the grad_fn of every input it solely owns to a work list first.
VarData::~VarData() {
  std::vector<std::shared_ptr<Node>> pending;
  if (grad_fn) pending.push_back(std::move(grad_fn));
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    if (node.use_count() != 1) continue;  // still referenced elsewhere: not ours to tear down
    node->backward = nullptr;             // drops the Vars the backward lambda captured
    for (Var& in : node->inputs) {
      VarData* d = in.data_ptr();
      if (d && d->grad_fn && in.use_count() == 1) pending.push_back(std::move(d->grad_fn));
    }
    // `node` is destroyed here; its inputs have no grad_fn left to recurse into.
  }
}

Var::Var(Tensor value, bool requires_grad, std::string name) : d_(std::make_shared<VarData>()) {
  d_->value = std::move(value);
  d_->requires_grad = requires_grad;
  d_->name = std::move(name);
}

void Var::grad_accumulate(const Tensor& g) const {
  if (!requires_grad()) return;
  SM_CHECK(g.shape() == d_->value.shape(),
           "gradient of shape " << shape_str(g.shape()) << " for a value of shape " << shape_str(d_->value.shape())
                                << (d_->grad_fn ? std::string(" (output of ") + d_->grad_fn->op_name + ")" : std::string()));
  if (!d_->grad.defined()) {
    d_->grad = g.contiguous().clone();
    return;
  }
  tensor_add_(d_->grad, g);
}

Tensor& Var::grad_buffer() const {
  SM_CHECK(requires_grad(), "grad_buffer: '" << d_->name << "' does not require a gradient");
  if (!d_->grad.defined()) d_->grad = Tensor::zeros(d_->value.shape(), d_->value.dtype(), d_->value.device());
  return d_->grad;
}

void Var::grad_zero() const {
  if (d_ && d_->grad.defined()) d_->grad.zero_();
}

void Var::grad_release() const {
  if (d_) d_->grad = Tensor();
}

Var var_make_result(Tensor value, std::vector<Var> inputs, const char* op_name, BackwardFn backward) {
  Var out(std::move(value));
  if (!t_grad_mode) return out;
  bool any = false;
  for (const Var& in : inputs) any = any || in.requires_grad();
  if (!any) return out;
  SM_CHECK(backward, op_name << " is inference-only (no backward): run it under NoGradGuard or on inputs without gradients");
  auto node = std::make_shared<Node>();
  node->op_name = op_name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.d_->grad_fn = std::move(node);
  out.d_->requires_grad = true;
  return out;
}

void backward(const Var& root, const Tensor& seed) {
  SM_CHECK(root.defined(), "backward() on an undefined Var");
  SM_CHECK(root.requires_grad(), "backward(): the root does not require a gradient (no parameter or input in its graph needs one)");
  // Iterative post-order DFS over Vars that have a grad_fn: each Var appears once, after all of
  // its inputs, however many paths reach it.
  std::vector<VarData*> order;
  std::unordered_set<VarData*> visited;
  std::vector<std::pair<VarData*, size_t>> stack;  // (var, next input to visit)
  stack.push_back({root.data_ptr(), 0});
  visited.insert(root.data_ptr());
  while (!stack.empty()) {
    auto& [v, next] = stack.back();
    Node* node = v->grad_fn.get();
    if (node && next < node->inputs.size()) {
      VarData* in = node->inputs[next++].data_ptr();
      if (in->grad_fn && !visited.count(in)) {
        visited.insert(in);
        stack.push_back({in, 0});
      }
      continue;
    }
    order.push_back(v);
    stack.pop_back();
  }
  Var root_copy = root;
  if (seed.defined()) {
    root_copy.grad_accumulate(seed);
  } else {
    SM_CHECK(root.value().numel() == 1, "backward() without a seed needs a one-element root, got " << shape_str(root.shape()));
    root_copy.grad_accumulate(Tensor::full(root.shape(), 1.0, root.value().dtype(), root.value().device()));
  }
  // Reverse post-order = every consumer before its producers.
  for (size_t i = order.size(); i-- > 0;) {
    VarData* v = order[i];
    if (!v->grad.defined()) continue;  // nothing flowed into this branch
    v->grad_fn->backward(v->grad);
    v->grad = Tensor();  // an intermediate's gradient is spent once its node has run
  }
}

Tensor* grad_target(const Var& v) { return v.defined() && v.requires_grad() ? &v.grad_buffer() : nullptr; }

}  // namespace sm
