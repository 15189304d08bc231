// Module registry and naming (see module.h).
#include "layers/module.h"

namespace sm {

void Module::train(bool on) {
  if (on && frozen_) inference_unfreeze();  // training changes the weights: the snapshot goes
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::inference_freeze() {
  train(false);  // recursive already
  snapshot_build_recursive();
}

void Module::snapshot_build_recursive() {
  inference_snapshot_drop();
  inference_snapshot_build();
  frozen_ = true;
  for (auto& [name, child] : children_) child->snapshot_build_recursive();
}

void Module::inference_unfreeze() {
  inference_snapshot_drop();
  frozen_ = false;
  for (auto& [name, child] : children_) child->inference_unfreeze();
}

bool Module::inference_snapshot_active() const { return frozen_ && !grad_mode_enabled(); }

void Module::collect(const std::string& prefix, bool params, std::vector<NamedVar>& out) const {
  for (const auto& [name, v] : (params ? params_ : buffers_)) out.push_back({prefix + name, v});
  // A child registered under "" contributes its names unprefixed (a network that embeds a
  // torchvision-style backbone keeps "conv1.weight", "layer1.0...").
  for (const auto& [name, child] : children_) child->collect(name.empty() ? prefix : prefix + name + ".", params, out);
}

std::vector<NamedVar> Module::named_parameters() const {
  std::vector<NamedVar> out;
  collect("", true, out);
  return out;
}

std::vector<NamedVar> Module::named_buffers() const {
  std::vector<NamedVar> out;
  collect("", false, out);
  return out;
}

std::vector<NamedVar> Module::state_dict() const {
  std::vector<NamedVar> out = named_parameters();
  std::vector<NamedVar> b = named_buffers();
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [n, v] : named_parameters()) out.push_back(v);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, v] : named_parameters()) n += v.value().numel();
  return n;
}

void Module::to_dtype(DType dtype) {
  const bool frozen = frozen_;
  if (frozen) inference_unfreeze();
  for (auto& [name, v] : state_dict()) {
    Var var = v;
    var.value_mut() = var.value().to(dtype).clone();
    var.grad_release();
  }
  if (frozen) inference_freeze();
}

void Module::to_device(Device device) {
  const bool frozen = frozen_;
  if (frozen) inference_unfreeze();
  for (auto& [name, v] : state_dict()) {
    Var var = v;
    var.value_mut() = var.value().to(device);
    var.grad_release();
  }
  if (frozen) inference_freeze();
}

Device Module::device() const {
  const std::vector<NamedVar> p = named_parameters();
  return p.empty() ? Device::CPU : p.front().second.value().device();
}

Var Module::parameter_add(const std::string& name, Tensor init) {
  Var v(std::move(init), true, name);
  params_.push_back({name, v});
  return v;
}

Var Module::buffer_add(const std::string& name, Tensor init) {
  Var v(std::move(init), false, name);
  buffers_.push_back({name, v});
  return v;
}

}  // namespace sm
