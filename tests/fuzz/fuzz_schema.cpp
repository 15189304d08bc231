// Fuzz target: landmark schema JSON (models/geometry/schema.cpp). A schema that is accepted must expand
// to its canonical JSON and rebuild to the same landmarks and vertebrae.
#include "fuzz_json.h"
#include "models/geometry/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = sm::fuzz::json_of(data, size);
  if (!j) return 0;
  sm::fuzz::expect_sm_error_only([&] {
    const sm::Schema s = sm::schema_from_json(*j);
    const sm::Schema again = sm::schema_from_json(sm::schema_to_json(s));
    if (again.landmarks != s.landmarks || again.vertebra_count() != s.vertebra_count()) {
      std::fprintf(stderr, "fuzz: a schema changed through its canonical JSON\n");
      std::abort();
    }
    for (int v = 0; v < s.vertebra_count(); ++v) (void)s.vertebra_landmarks(v);
    for (const auto& l : s.landmarks) (void)s.landmark_index(l);
  });
  return 0;
}
