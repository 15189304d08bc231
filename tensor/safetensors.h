// safetensors files: read and write named tensors in the format of huggingface/safetensors
// (8-byte little-endian header length N, N bytes of JSON header padded with spaces to a multiple
// of 8, then the packed little-endian data; offsets are relative to the data section).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace sm {

using NamedTensor = std::pair<std::string, Tensor>;

// What a file holds. tensors: in data-offset order, each F32 or F64 on the CPU. file_dtypes
// gives each tensor's dtype as spelled in the file ("F32", "I64", ...): I64, I32, I16, I8, U8,
// BOOL, F16 and BF16 are read converted to F32.
struct SafeTensorsFile {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;  // the header's "__metadata__" (string -> string)
  std::map<std::string, std::string> file_dtypes;

  const Tensor* find(const std::string& name) const;  // nullptr when absent
};

struct SafeTensorsWriteOptions {
  // Tensors whose names end with one of these are written as I64 (their values must be whole
  // numbers), e.g. "num_batches_tracked" so that PyTorch's load_state_dict(strict=True) accepts
  // BatchNorm's int64 counter.
  std::vector<std::string> i64_name_suffixes;
};

// Serialises tensors (any device, F32/F64, names unique and not "__metadata__"). Data order:
// 8-byte dtypes first, then 4-byte ones, the caller's order within each (so every tensor is
// aligned to its element size, as the reference implementation's dtype sort guarantees).
std::string safetensors_serialize(const std::vector<NamedTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {},
                                  const SafeTensorsWriteOptions& options = {});

// Parses the bytes of a whole file; `source` names it in error messages (usually the path).
// Rejects, naming the file and the tensor: a header length beyond the file, malformed JSON,
// unknown dtypes, bad shapes, offsets out of range, overlapping or leaving gaps, shape x dtype
// size different from the byte span, and truncated data.
SafeTensorsFile safetensors_parse(const std::string& bytes, const std::string& source);

// Writes atomically (temporary file, flush, rename) / reads a whole file.
void safetensors_write(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       const SafeTensorsWriteOptions& options = {});
SafeTensorsFile safetensors_read(const std::string& path);

}  // namespace sm
