// Model weights load/save through safetensors (see weights.h); name/shape/dtype checks after
// PyTorch's load_state_dict(strict=True), which also lists missing and unexpected keys.
#include "layers/weights.h"

#include <set>
#include <sstream>

namespace sm {

namespace {

// Lists at most `limit` names, then "... and K more".
std::string names_join(const std::vector<std::string>& names, size_t limit = 20) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < limit; ++i) os << (i ? ", " : "") << "'" << names[i] << "'";
  if (names.size() > limit) os << ", ... and " << names.size() - limit << " more";
  return os.str();
}

bool dtype_loads_into(const std::string& file_dtype, DType target) {
  if (file_dtype == "F32") return target == DType::F32;
  if (file_dtype == "F64") return target == DType::F64;
  return true;  // integer and half types were read as F32 and convert to either float type
}

}  // namespace

SafeTensorsWriteOptions weights_write_options() {
  SafeTensorsWriteOptions o;
  o.i64_name_suffixes = {"num_batches_tracked"};
  return o;
}

std::vector<NamedTensor> module_named_tensors(const Module& module) {
  std::vector<NamedTensor> out;
  for (const auto& [name, var] : module.state_dict()) out.push_back({name, var.value()});
  return out;
}

void weights_save(const std::string& path, const Module& module, const std::map<std::string, std::string>& metadata) {
  weights_save(path, module_named_tensors(module), metadata);
}

void weights_save(const std::string& path, const std::vector<NamedTensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  safetensors_write(path, tensors, metadata, weights_write_options());
}

void weights_check(const SafeTensorsFile& file, const std::string& source, const std::vector<NamedTensor>& targets) {
  std::vector<std::string> missing, extra, mismatched;
  std::set<std::string> wanted;
  for (const auto& [name, target] : targets) {
    SM_CHECK(target.defined(), "weights_assign: target tensor '" << name << "' is undefined");
    wanted.insert(name);
    const Tensor* src = file.find(name);
    if (!src) {
      missing.push_back(name);
      continue;
    }
    const std::string& fdt = file.file_dtypes.count(name) ? file.file_dtypes.at(name) : std::string(dtype_name(src->dtype()));
    if (src->shape() != target.shape() || !dtype_loads_into(fdt, target.dtype())) {
      mismatched.push_back("'" + name + "': file has " + fdt + " " + shape_str(src->shape()) + ", model expects " +
                           dtype_name(target.dtype()) + " " + shape_str(target.shape()));
    }
  }
  for (const auto& [name, t] : file.tensors)
    if (!wanted.count(name)) extra.push_back(name);

  if (!missing.empty() || !extra.empty() || !mismatched.empty()) {
    std::ostringstream os;
    os << "cannot load '" << source << "' (nothing was loaded):";
    if (!missing.empty()) os << "\n  missing from the file (" << missing.size() << "): " << names_join(missing);
    if (!extra.empty()) os << "\n  not in the model (" << extra.size() << "): " << names_join(extra);
    for (size_t i = 0; i < mismatched.size() && i < 20; ++i) os << "\n  mismatch " << mismatched[i];
    if (mismatched.size() > 20) os << "\n  ... and " << mismatched.size() - 20 << " more mismatches";
    SM_FAIL(os.str());
  }
}

void weights_assign(const SafeTensorsFile& file, const std::string& source, const std::vector<NamedTensor>& targets) {
  weights_check(file, source, targets);
  for (const auto& [name, target] : targets) {
    Tensor dst = target;  // shares storage: copy_ writes into the model's (or flat buffer's) memory
    dst.copy_(file.find(name)->to(dst.dtype()).to(dst.device()));
  }
}

void weights_load(const std::string& path, Module& module) {
  weights_load(path, module_named_tensors(module));
  if (module.inference_frozen()) module.inference_freeze();  // the snapshot from the new weights
}

void weights_load(const std::string& path, const std::vector<NamedTensor>& targets) {
  weights_assign(safetensors_read(path), path, targets);
}

}  // namespace sm
