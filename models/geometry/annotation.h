// One image's annotation (method.md §2.1): image path, schema, pixel spacing, landmarks by name
// and optional visibility. Points are kept in the schema's landmark order.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/geometry/schema.h"

namespace sm {

using Point2 = std::array<double, 2>;  // (x, y) in pixels of the original image

struct Annotation {
  std::string image;   // image path, relative to the annotation file's folder
  std::string schema;  // schema name
  std::optional<std::array<double, 2>> pixel_spacing_mm;  // (row, col)
  std::vector<Point2> points;  // (L,) in schema landmark order; NaN where the landmark is absent
  std::vector<bool> visible;   // (L,) false for absent/hidden landmarks
  nlohmann::json extra = nlohmann::json::object();  // other keys, kept as they are
};

Annotation annotation_from_json(const nlohmann::json& j, const Schema& schema);
nlohmann::json annotation_to_json(const Annotation& a, const Schema& schema);
// Reads a JSON annotation (the schema is looked up by its name); errors name the file.
Annotation annotation_read(const std::string& path);
// Writes atomically (temporary file, flush, rename).
void annotation_write(const std::string& path, const Annotation& a, const Schema& schema);

}  // namespace sm
