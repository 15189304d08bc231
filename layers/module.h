// Module: the base of every layer and network. It owns named parameters (Vars that require a
// gradient) and buffers (Vars that do not, e.g. BatchNorm running statistics) and child
// modules, and names them the way PyTorch/torchvision does ("layer1.0.conv1.weight",
// "bn1.running_mean"), so that weights move between the two frameworks by name.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"

namespace sm {

using NamedVar = std::pair<std::string, Var>;

class Module {
 public:
  virtual ~Module() = default;
  // x: (N, C, H, W) for image layers. Single-input modules implement this.
  virtual Var forward(const Var& x) = 0;
  virtual std::string type_name() const = 0;
  Var operator()(const Var& x) { return forward(x); }

  void train(bool on = true);  // recursive; eval() = train(false)
  void eval() { train(false); }
  bool training() const { return training_; }

  // Depth-first, in registration order: exactly PyTorch's named_parameters()/named_buffers().
  std::vector<NamedVar> named_parameters() const;
  std::vector<NamedVar> named_buffers() const;
  std::vector<NamedVar> state_dict() const;  // parameters then buffers, each in module order
  std::vector<Var> parameters() const;
  int64_t parameter_count() const;

  // Converts every parameter and buffer (gradients dropped). float64 for gradient checks. A
  // frozen module (below) is frozen again from the converted weights.
  void to_dtype(DType dtype);
  void to_device(Device device);
  // Where the first parameter lives (CPU for a module without parameters).
  Device device() const;

  // Inference snapshot (layers/conv_bn_fold.h): each Conv2d → BatchNorm2d pair runs as one conv
  // with the BN folded into its weights and bias and the ReLU after it fused, and the convs keep
  // their weights packed (and Winograd-transformed) between calls. What predict, eval and the
  // benchmark's inference run. It is a snapshot of the weights: parameters or BN statistics
  // changed afterwards are not seen until inference_freeze() is called again; train(true),
  // to_dtype(), to_device() and weights_load() keep it consistent (drop it, or rebuild it from
  // the new weights). The snapshot serves forwards without a graph (NoGradGuard) only; a forward
  // that records one runs the layers as they are. Both are recursive; freezing implies eval().
  void inference_freeze();
  void inference_unfreeze();
  bool inference_frozen() const { return frozen_; }

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 protected:
  // This module's own part of the snapshot (not its children's): build it from the current
  // weights / drop it. Default: nothing to keep.
  virtual void inference_snapshot_build() {}
  virtual void inference_snapshot_drop() {}
  // True when forward should run from the snapshot: frozen, and no graph is being recorded.
  bool inference_snapshot_active() const;

  Var parameter_add(const std::string& name, Tensor init);
  Var buffer_add(const std::string& name, Tensor init);
  template <class M> std::shared_ptr<M> module_add(const std::string& name, std::shared_ptr<M> m) {
    children_.push_back({name, m});
    return m;
  }

 private:
  void snapshot_build_recursive();  // inference_freeze() below the eval() it starts with
  void collect(const std::string& prefix, bool params, std::vector<NamedVar>& out) const;
  std::vector<NamedVar> params_;
  std::vector<NamedVar> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  bool frozen_ = false;
};

}  // namespace sm
