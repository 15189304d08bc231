// safetensors reader and writer (see safetensors.h); follows the format and the checks of
// huggingface/safetensors (safetensors/src/tensor.rs: header length, JSON, dtype, offsets).
#include "tensor/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "tensor/file_io.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace sm {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference refuses larger headers too

struct FileDType {
  const char* name;
  size_t bytes;
};
constexpr FileDType kFileDTypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                     {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};

const FileDType* file_dtype_find(const std::string& name) {
  for (const FileDType& d : kFileDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

// IEEE half -> float: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals are m * 2^-24.
float half_to_float(uint16_t h) {
  int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(float(man), -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = std::ldexp(float(man | 0x400), exp - 25);
  return sign ? -v : v;
}

// bfloat16 is the top 16 bits of a float32.
float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class S> void convert_to_f32(const char* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) {
    S s;
    std::memcpy(&s, src + i * int64_t(sizeof(S)), sizeof(S));
    dst[i] = float(s);
  }
}

// Copies `n` elements of file dtype `dt` at `src` into a new CPU tensor (F32/F64 kept, rest -> F32).
Tensor tensor_from_bytes(const std::string& dt, const Shape& shape, const char* src) {
  if (dt == "F64" || dt == "F32") {
    Tensor t = Tensor::empty(shape, dt == "F64" ? DType::F64 : DType::F32);
    std::memcpy(t.raw_data(), src, size_t(t.numel()) * dtype_size(t.dtype()));
    return t;
  }
  Tensor t = Tensor::empty(shape, DType::F32);
  float* d = t.f32();
  int64_t n = t.numel();
  if (dt == "I64") convert_to_f32<int64_t>(src, n, d);
  else if (dt == "I32") convert_to_f32<int32_t>(src, n, d);
  else if (dt == "I16") convert_to_f32<int16_t>(src, n, d);
  else if (dt == "I8") convert_to_f32<int8_t>(src, n, d);
  else if (dt == "U8" || dt == "BOOL") convert_to_f32<uint8_t>(src, n, d);
  else if (dt == "F16" || dt == "BF16") {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      d[i] = dt == "F16" ? half_to_float(h) : bf16_to_float(h);
    }
  }
  return t;
}

bool name_ends_with(const std::string& name, const std::string& suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One tensor's entry parsed from the header.
struct Entry {
  std::string name, dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Entry entry_parse(const std::string& source, const std::string& name, const nlohmann::json& j) {
  const std::string where = "'" + source + "': tensor '" + name + "'";
  SM_CHECK(j.is_object(), where << ": header entry is not a JSON object");
  SM_CHECK(j.contains("dtype") && j["dtype"].is_string(), where << ": missing or non-string \"dtype\"");
  SM_CHECK(j.contains("shape") && j["shape"].is_array(), where << ": missing or non-array \"shape\"");
  SM_CHECK(j.contains("data_offsets") && j["data_offsets"].is_array() && j["data_offsets"].size() == 2,
           where << ": \"data_offsets\" must be an array [begin, end]");
  Entry e;
  e.name = name;
  e.dtype = j["dtype"].get<std::string>();
  SM_CHECK(file_dtype_find(e.dtype), where << ": unknown or unsupported dtype \"" << e.dtype
                                           << "\" (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
  for (const auto& d : j["shape"]) {
    SM_CHECK(d.is_number_unsigned(), where << ": shape entries must be non-negative integers, got " << d.dump());
    e.shape.push_back(int64_t(d.get<uint64_t>()));
  }
  for (int k = 0; k < 2; ++k)
    SM_CHECK(j["data_offsets"][k].is_number_unsigned(), where << ": data_offsets must be non-negative integers");
  e.begin = j["data_offsets"][0].get<uint64_t>();
  e.end = j["data_offsets"][1].get<uint64_t>();
  SM_CHECK(e.begin <= e.end, where << ": data_offsets [" << e.begin << ", " << e.end << "] has begin > end");
  // numel x element size, guarding against overflow from absurd shapes.
  uint64_t bytes = file_dtype_find(e.dtype)->bytes;
  for (int64_t d : e.shape) {
    SM_CHECK(d == 0 || bytes <= (uint64_t(1) << 62) / uint64_t(d), where << ": shape " << shape_str(e.shape) << " is too large");
    bytes *= uint64_t(d);
  }
  SM_CHECK(bytes == e.end - e.begin, where << ": shape " << shape_str(e.shape) << " of " << e.dtype << " needs " << bytes
                                           << " bytes but data_offsets [" << e.begin << ", " << e.end << "] span "
                                           << (e.end - e.begin));
  return e;
}

// The entries sorted by begin must tile [0, data_size) exactly: no gap, no overlap, nothing past the end.
void entries_check_layout(const std::string& source, std::vector<Entry>& entries, uint64_t data_size) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const Entry& e : entries) {
    SM_CHECK(e.begin >= pos, "'" << source << "': tensor '" << e.name << "' data_offsets [" << e.begin << ", " << e.end
                                 << "] overlap the previous tensor (which ends at " << pos << ")");
    SM_CHECK(e.begin == pos, "'" << source << "': gap in the data before tensor '" << e.name << "' (bytes " << pos
                                 << " to " << e.begin << " belong to no tensor)");
    SM_CHECK(e.end <= data_size, "'" << source << "': truncated file: tensor '" << e.name << "' needs data bytes ["
                                     << e.begin << ", " << e.end << ") but the data section has only " << data_size
                                     << " bytes");
    pos = e.end;
  }
  SM_CHECK(pos == data_size, "'" << source << "': " << (data_size - pos)
                                 << " bytes after the last tensor's data belong to no tensor (corrupt header or file)");
}

}  // namespace

const Tensor* SafeTensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string safetensors_serialize(const std::vector<NamedTensor>& tensors, const std::map<std::string, std::string>& metadata,
                                  const SafeTensorsWriteOptions& options) {
  struct Item {
    const std::string* name;
    Tensor host;  // contiguous, CPU
    const char* file_dtype;
    size_t elem_bytes;
  };
  std::vector<Item> items;
  std::vector<std::string> seen;
  for (const auto& [name, t] : tensors) {
    SM_CHECK(!name.empty() && name != "__metadata__", "safetensors: invalid tensor name '" << name << "'");
    SM_CHECK(t.defined(), "safetensors: tensor '" << name << "' is undefined");
    seen.push_back(name);
    bool as_i64 = false;
    for (const auto& s : options.i64_name_suffixes) as_i64 = as_i64 || name_ends_with(name, s);
    Item it{&name, t.contiguous().to(Device::CPU), as_i64 ? "I64" : dtype_name(t.dtype()), 0};
    it.elem_bytes = as_i64 ? 8 : dtype_size(t.dtype());
    items.push_back(std::move(it));
  }
  std::sort(seen.begin(), seen.end());
  auto dup = std::adjacent_find(seen.begin(), seen.end());
  SM_CHECK(dup == seen.end(), "safetensors: tensor name '" << *dup << "' appears twice");
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.elem_bytes > b.elem_bytes; });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Item& it : items) {
    uint64_t bytes = uint64_t(it.host.numel()) * it.elem_bytes;
    header[*it.name] = {{"dtype", it.file_dtype}, {"shape", it.host.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so that the data starts 8-byte aligned

  std::string out(8 + json.size() + offset, '\0');
  uint64_t n = json.size();
  std::memcpy(&out[0], &n, 8);
  std::memcpy(&out[8], json.data(), json.size());
  char* data = &out[8 + json.size()];
  for (const Item& it : items) {
    const int64_t numel = it.host.numel();
    if (std::strcmp(it.file_dtype, "I64") == 0) {
      std::vector<double> v = it.host.to_vector_f64();
      for (int64_t i = 0; i < numel; ++i) {
        SM_CHECK(std::nearbyint(v[size_t(i)]) == v[size_t(i)] && std::fabs(v[size_t(i)]) < 9.2e18,
                 "safetensors: tensor '" << *it.name << "' is written as I64 but element " << i << " = " << v[size_t(i)]
                                         << " is not a whole number");
        int64_t x = int64_t(v[size_t(i)]);
        std::memcpy(data + 8 * i, &x, 8);
      }
    } else if (numel > 0) {
      std::memcpy(data, it.host.raw_data(), size_t(numel) * it.elem_bytes);
    }
    data += size_t(numel) * it.elem_bytes;
  }
  return out;
}

SafeTensorsFile safetensors_parse(const std::string& bytes, const std::string& source) {
  SM_CHECK(bytes.size() >= 8, "'" << source << "' is not a safetensors file: " << bytes.size()
                                  << " bytes, fewer than the 8-byte header length (truncated or empty file)");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  SM_CHECK(n <= bytes.size() - 8, "'" << source << "': header length " << n << " runs past the end of the file ("
                                      << bytes.size() << " bytes): truncated or not a safetensors file");
  SM_CHECK(n <= kMaxHeaderBytes, "'" << source << "': header length " << n << " is implausibly large");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + int64_t(n));
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL("'" << source << "': the JSON header is malformed (" << e.what() << ")");
  }
  SM_CHECK(header.is_object(), "'" << source << "': the JSON header is not an object");

  SafeTensorsFile file;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      SM_CHECK(it.value().is_object(), "'" << source << "': \"__metadata__\" is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        SM_CHECK(m.value().is_string(), "'" << source << "': metadata '" << m.key() << "' is not a string");
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(entry_parse(source, it.key(), it.value()));
  }
  const uint64_t data_begin = 8 + n;
  entries_check_layout(source, entries, bytes.size() - data_begin);
  for (const Entry& e : entries) {
    file.tensors.push_back({e.name, tensor_from_bytes(e.dtype, e.shape, bytes.data() + data_begin + e.begin)});
    file.file_dtypes[e.name] = e.dtype;
  }
  return file;
}

void safetensors_write(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata, const SafeTensorsWriteOptions& options) {
  file_write_atomic(path, safetensors_serialize(tensors, metadata, options));
}

SafeTensorsFile safetensors_read(const std::string& path) { return safetensors_parse(file_read_all(path), path); }

}  // namespace sm
