// Model weights as safetensors files with PyTorch/torchvision names ("layer1.0.conv1.weight",
// "bn1.num_batches_tracked"), so that weights move both ways with torch's state_dict(). Loading
// follows dlib's rule: check everything first, refuse any mismatch loudly, copy nothing partially.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "layers/module.h"
#include "tensor/safetensors.h"

namespace sm {

// The write options for state dicts: BatchNorm's counter goes out as I64, as PyTorch keeps it.
SafeTensorsWriteOptions weights_write_options();

// Writes module.state_dict() (parameters then buffers) atomically.
void weights_save(const std::string& path, const Module& module, const std::map<std::string, std::string>& metadata = {});
// Writes a plain list of named tensors atomically (same options as weights_save).
void weights_save(const std::string& path, const std::vector<NamedTensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

// Copies `file`'s tensors into `targets` (each target an existing tensor whose storage is
// updated in place, so views into flat buffers stay views). Before copying anything it checks
// that the two name sets are equal and that every shape and dtype matches; on failure it throws
// one sm::Error naming `file.source`, every missing, extra and mismatched tensor. dtype rule:
// F32 <- F32 and F64 <- F64; integer/half file dtypes (I64, F16, ...) load into F32 or F64 targets.
void weights_assign(const SafeTensorsFile& file, const std::string& source, const std::vector<NamedTensor>& targets);
// The checks of weights_assign alone (throws the same error; copies nothing), for callers that
// must validate several files before changing anything (checkpoints).
void weights_check(const SafeTensorsFile& file, const std::string& source, const std::vector<NamedTensor>& targets);

// Reads `path` and assigns it to module.state_dict() / to `targets` (see weights_assign).
void weights_load(const std::string& path, Module& module);
void weights_load(const std::string& path, const std::vector<NamedTensor>& targets);

// The module's state_dict as named tensors (values share storage with the module).
std::vector<NamedTensor> module_named_tensors(const Module& module);

}  // namespace sm
