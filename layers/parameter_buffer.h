// ParameterBuffer: a module's parameters gathered into ONE flat value buffer and ONE flat
// gradient buffer per (dtype, device), with named views (llm.c's single allocation for params
// and grads; style.md rule 11). Each parameter Var's value and grad tensors are re-pointed to
// views into the flat buffers, so optimizers, gradient norm, zero_grad and checkpoint I/O walk
// one buffer, while layers keep using their Vars unchanged.
#pragma once
#include <string>
#include <vector>

#include "layers/module.h"
#include "tensor/safetensors.h"

namespace sm {

struct ParameterSlot {
  std::string name;  // PyTorch name, e.g. "layer1.0.conv1.weight"
  Var var;
  int64_t offset = 0;  // first element in the group's flat buffers
  Shape shape;
};

struct ParameterGroup {
  DType dtype = DType::F32;
  Device device = Device::CPU;
  Tensor values;  // (numel,) every parameter of this dtype/device, in module order
  Tensor grads;   // (numel,) their gradients, same layout
  std::vector<ParameterSlot> slots;

  Tensor view(const Tensor& flat, const ParameterSlot& s) const;  // slot's view of a (numel,) buffer
};

class ParameterBuffer {
 public:
  // Copies each parameter's current value (and gradient, zeros when it has none) into the flat
  // buffers and re-points the Var's value and grad to views. Requires unique names and at
  // least one parameter.
  explicit ParameterBuffer(const std::vector<NamedVar>& params);
  explicit ParameterBuffer(const Module& module) : ParameterBuffer(module.named_parameters()) {}

  std::vector<ParameterGroup>& groups() { return groups_; }
  const std::vector<ParameterGroup>& groups() const { return groups_; }
  int64_t numel() const;

  void grad_zero();  // one fill per group (re-points grads first, see grads_gather)
  // Puts gradients back into the flat buffer when something replaced a Var's grad tensor (e.g.
  // grad_release() followed by a backward pass): copies it in (or zeros) and re-points the view.
  // Optimizers call this before reading the flat gradients.
  void grads_gather();
  // Fails, naming the parameter, when a Var's value is no longer a view into the flat buffer
  // (e.g. after Module::to_dtype): the ParameterBuffer must then be rebuilt.
  void views_check() const;
  // True when every value and grad of every slot is a view into the flat buffers.
  bool views_intact() const;

  // Named views (no copies): "name" -> value / gradient.
  std::vector<NamedTensor> named_values() const;
  std::vector<NamedTensor> named_grads() const;
  // Named views of a buffer laid out like the values (e.g. an optimizer moment), one per group.
  std::vector<NamedTensor> named_views(const std::vector<Tensor>& flat_per_group, const std::string& prefix) const;

 private:
  std::vector<ParameterGroup> groups_;
};

}  // namespace sm
