// Sequential: children named "0", "1", ... run in order (torch.nn.Sequential).
#pragma once
#include <memory>
#include <vector>

#include "layers/module.h"

namespace sm {

class Sequential : public Module {
 public:
  Sequential() = default;
  // Appends m under the next index name and returns it.
  template <class M> std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    SM_CHECK(m != nullptr, "Sequential::push_back: null module");
    layers_.push_back(m);
    return module_add(std::to_string(layers_.size() - 1), std::move(m));
  }
  Var forward(const Var& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<Module>& at(size_t i) const { return layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace sm
