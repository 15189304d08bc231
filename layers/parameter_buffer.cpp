// ParameterBuffer (see parameter_buffer.h). Views are slices of the flat (numel,) tensor reshaped
// to the parameter's shape; they share the flat tensor's storage. Var::grad_accumulate adds into
// a defined grad in place, so grads pre-set to views stay views through backward passes.
#include "layers/parameter_buffer.h"

#include <set>

namespace sm {

namespace {
bool tensor_is_view_of(const Tensor& t, const Tensor& flat, int64_t offset) {
  return t.defined() && t.storage() == flat.storage() && t.offset() == flat.offset() + offset && t.is_contiguous();
}
}  // namespace

Tensor ParameterGroup::view(const Tensor& flat, const ParameterSlot& s) const {
  return flat.slice(s.offset, s.offset + shape_numel(s.shape)).view(s.shape);
}

ParameterBuffer::ParameterBuffer(const std::vector<NamedVar>& params) {
  SM_CHECK(!params.empty(), "ParameterBuffer: the module has no parameters");
  std::set<std::string> names;
  for (const auto& [name, var] : params) {
    SM_CHECK(var.defined() && var.value().defined(), "ParameterBuffer: parameter '" << name << "' is undefined");
    SM_CHECK(names.insert(name).second, "ParameterBuffer: parameter name '" << name << "' appears twice");
    const Tensor& v = var.value();
    ParameterGroup* g = nullptr;
    for (auto& gr : groups_)
      if (gr.dtype == v.dtype() && gr.device == v.device()) g = &gr;
    if (!g) {
      groups_.push_back(ParameterGroup{});
      g = &groups_.back();
      g->dtype = v.dtype();
      g->device = v.device();
    }
    int64_t offset = g->slots.empty() ? 0 : g->slots.back().offset + shape_numel(g->slots.back().shape);
    g->slots.push_back({name, var, offset, v.shape()});
  }
  for (auto& g : groups_) {
    const ParameterSlot& last = g.slots.back();
    int64_t n = last.offset + shape_numel(last.shape);
    g.values = Tensor::empty({n}, g.dtype, g.device);
    g.grads = Tensor::zeros({n}, g.dtype, g.device);
    for (auto& s : g.slots) {
      Tensor vv = g.view(g.values, s), gv = g.view(g.grads, s);
      vv.copy_(s.var.value().contiguous());
      if (s.var.grad().defined()) gv.copy_(s.var.grad().contiguous());
      s.var.value_mut() = vv;
      s.var.grad() = gv;
    }
  }
}

int64_t ParameterBuffer::numel() const {
  int64_t n = 0;
  for (const auto& g : groups_) n += g.values.numel();
  return n;
}

void ParameterBuffer::grads_gather() {
  for (auto& g : groups_) {
    for (auto& s : g.slots) {
      Tensor& grad = s.var.grad();
      if (tensor_is_view_of(grad, g.grads, s.offset)) continue;
      Tensor gv = g.view(g.grads, s);
      if (grad.defined()) {
        SM_CHECK(grad.shape() == s.shape, "ParameterBuffer: gradient of '" << s.name << "' has shape "
                                                                          << shape_str(grad.shape()) << ", expected "
                                                                          << shape_str(s.shape));
        gv.copy_(grad.contiguous().to(g.dtype).to(g.device));
      } else {
        gv.zero_();
      }
      grad = gv;
    }
  }
}

void ParameterBuffer::grad_zero() {
  for (auto& g : groups_)
    for (auto& s : g.slots)
      if (!tensor_is_view_of(s.var.grad(), g.grads, s.offset)) s.var.grad() = g.view(g.grads, s);
  for (auto& g : groups_) g.grads.zero_();
}

void ParameterBuffer::views_check() const {
  for (const auto& g : groups_)
    for (const auto& s : g.slots)
      SM_CHECK(tensor_is_view_of(s.var.value(), g.values, s.offset) && s.var.value().shape() == s.shape,
               "ParameterBuffer: parameter '" << s.name << "' no longer lives in the flat buffer (its value tensor was "
                                              << "replaced, e.g. by to_dtype/to_device): rebuild the ParameterBuffer");
}

bool ParameterBuffer::views_intact() const {
  for (const auto& g : groups_)
    for (const auto& s : g.slots)
      if (!tensor_is_view_of(s.var.value(), g.values, s.offset) || !tensor_is_view_of(s.var.grad(), g.grads, s.offset))
        return false;
  return true;
}

std::vector<NamedTensor> ParameterBuffer::named_views(const std::vector<Tensor>& flat_per_group, const std::string& prefix) const {
  SM_CHECK(flat_per_group.size() == groups_.size(), "ParameterBuffer::named_views: " << flat_per_group.size()
                                                                                     << " buffers for " << groups_.size() << " groups");
  std::vector<NamedTensor> out;
  for (size_t i = 0; i < groups_.size(); ++i)
    for (const auto& s : groups_[i].slots) out.push_back({prefix + s.name, groups_[i].view(flat_per_group[i], s)});
  return out;
}

std::vector<NamedTensor> ParameterBuffer::named_values() const {
  std::vector<Tensor> flats;
  for (const auto& g : groups_) flats.push_back(g.values);
  return named_views(flats, "");
}

std::vector<NamedTensor> ParameterBuffer::named_grads() const {
  std::vector<Tensor> flats;
  for (const auto& g : groups_) flats.push_back(g.grads);
  return named_views(flats, "");
}

}  // namespace sm
