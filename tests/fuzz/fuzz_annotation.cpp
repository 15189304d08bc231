// Fuzz target: annotation JSON (models/geometry/annotation.cpp) against the schema it names (a built-in
// one; lumbar-lateral when it names none). An annotation that is accepted must write and read
// back to the same landmarks.
#include <cmath>

#include "fuzz_json.h"
#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = sm::fuzz::json_of(data, size);
  if (!j) return 0;
  std::string name = "lumbar-lateral";
  if (j->is_object() && j->contains("schema") && (*j)["schema"].is_string())
    for (const auto& n : sm::schema_builtin_names())
      if (n == (*j)["schema"].get<std::string>()) name = n;
  const sm::Schema& schema = sm::schema_builtin(name);
  sm::fuzz::expect_sm_error_only([&] {
    const sm::Annotation a = sm::annotation_from_json(*j, schema);
    const sm::Annotation b = sm::annotation_from_json(sm::annotation_to_json(a, schema), schema);
    bool same = a.points.size() == b.points.size() && a.visible == b.visible;
    for (size_t i = 0; same && i < a.points.size(); ++i)
      for (int k = 0; k < 2; ++k)
        same = same && (a.points[i][size_t(k)] == b.points[i][size_t(k)] ||
                        (std::isnan(a.points[i][size_t(k)]) && std::isnan(b.points[i][size_t(k)])));
    if (!same) {
      std::fprintf(stderr, "fuzz: an annotation changed through write and read\n");
      std::abort();
    }
  });
  return 0;
}
