// Fuzz target: the safetensors reader (tensor/safetensors.cpp) on arbitrary bytes. A file it
// accepts must serialise again and parse to the same names and shapes.
#include "fuzz_support.h"
#include "tensor/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sm::fuzz::expect_sm_error_only([&] {
    const sm::SafeTensorsFile f = sm::safetensors_parse(sm::fuzz::bytes_of(data, size), "fuzz.safetensors");
    for (const auto& [name, t] : f.tensors) (void)f.find(name);
    const sm::SafeTensorsFile again =
        sm::safetensors_parse(sm::safetensors_serialize(f.tensors, f.metadata), "fuzz.roundtrip");
    if (again.tensors.size() != f.tensors.size()) {
      std::fprintf(stderr, "fuzz: safetensors round trip changed the tensor count\n");
      std::abort();
    }
    for (size_t i = 0; i < f.tensors.size(); ++i)
      if (again.find(f.tensors[i].first) == nullptr ||
          again.find(f.tensors[i].first)->shape() != f.tensors[i].second.shape()) {
        std::fprintf(stderr, "fuzz: safetensors round trip lost '%s'\n", f.tensors[i].first.c_str());
        std::abort();
      }
  });
  return 0;
}
