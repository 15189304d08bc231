// Optimizer base (state, step counting, named state) and gradient clipping (see optimizer.h).
#include "train/optim/optimizer.h"

#include <cmath>

#include "layers/weights.h"
#include "tensor/kernels/dispatch.h"
#include "tensor/ops.h"

namespace sm {

Optimizer::Optimizer(ParameterBuffer& params, double lr) : params_(params), lr_(lr) {
  SM_CHECK(lr >= 0.0, "optimizer: learning rate must be >= 0, got " << lr);
}

size_t Optimizer::moment_add(const std::string& moment_name) {
  std::vector<Tensor> flats;
  for (const auto& g : params_.groups()) flats.push_back(Tensor::zeros({g.values.numel()}, g.dtype, g.device));
  moment_names_.push_back(moment_name);
  moments_.push_back(std::move(flats));
  return moments_.size() - 1;
}

void Optimizer::step() {
  params_.views_check();
  params_.grads_gather();
  ++step_;
  auto& groups = params_.groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    // Each group_step is one fused kernel (tensor/kernels/optim.h); ask the kernel layer first so
    // that the message names the parameter.
    SM_CHECK(kernels::supports(step_kernel(), groups[i].device, groups[i].dtype),
             name() << " optimizer: " << dtype_name(groups[i].dtype) << " parameters on "
                    << device_name(groups[i].device) << " are not supported (first parameter '"
                    << groups[i].slots.front().name << "'; CUDA kernels run float32"
                    << (kernels::kCudaBuilt ? "" : ", and this build has no CUDA") << ")");
    group_step(groups[i], i);
  }
}

std::vector<NamedTensor> Optimizer::state_named() const {
  std::vector<NamedTensor> out;
  out.push_back({std::string(name()) + ".step", Tensor::scalar(double(step_), DType::F64)});
  for (size_t k = 0; k < moments_.size(); ++k) {
    auto views = params_.named_views(moments_[k], std::string(name()) + "." + moment_names_[k] + ".");
    out.insert(out.end(), views.begin(), views.end());
  }
  return out;
}

void Optimizer::state_check(const SafeTensorsFile& file, const std::string& source) const {
  std::vector<NamedTensor> targets = state_named();
  weights_check(file, source, targets);
  const std::string& step_name = targets.front().first;
  double s = file.find(step_name)->item();
  SM_CHECK(s >= 0 && s < 9.0e15 && std::nearbyint(s) == s,
           "'" << source << "': tensor '" << step_name << "' holds " << s << ", not a step count");
}

void Optimizer::state_assign(const SafeTensorsFile& file, const std::string& source) {
  state_check(file, source);  // every name/shape/dtype first: nothing changes on failure
  std::vector<NamedTensor> targets = state_named();
  weights_assign(file, source, targets);  // copies moments into the flat buffers' views
  step_ = int64_t(targets.front().second.item());
}

double grad_norm(ParameterBuffer& params) {
  params.grads_gather();
  double sum = 0.0;
  for (const auto& g : params.groups()) sum += tensor_sum_squares(g.grads);
  return std::sqrt(sum);
}

double grad_clip_norm(ParameterBuffer& params, double max_norm) {
  double norm = grad_norm(params);
  if (max_norm <= 0.0) return norm;
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (auto& g : params.groups()) tensor_scale_(g.grads, coef);
  return norm;
}

}  // namespace sm
