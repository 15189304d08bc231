// One image's annotation in the stable file format of method.md §2.1: landmarks by name,
// optional visibility (all true when absent), pixel spacing null or [row, col], extra keys kept.
#include "models/geometry/annotation.h"

#include <cmath>
#include <limits>
#include <set>

#include "tensor/check.h"
#include "tensor/file_io.h"

namespace sm {

namespace {

const std::set<std::string>& keys_known() {
  static const std::set<std::string> k = {"image", "schema", "pixel_spacing_mm", "landmarks", "visible"};
  return k;
}

Point2 point_parse(const nlohmann::json& v, const std::string& name) {
  SM_CHECK(v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number(),
           "landmark '" << name << "' must be [x, y] (numbers) or null, got " << v.dump());
  Point2 p{v[0].get<double>(), v[1].get<double>()};
  SM_CHECK(std::isfinite(p[0]) && std::isfinite(p[1]), "landmark '" << name << "' is not finite");
  return p;
}

}  // namespace

Annotation annotation_from_json(const nlohmann::json& j, const Schema& schema) {
  SM_CHECK(j.is_object(), "an annotation must be a JSON object");
  Annotation a;
  SM_CHECK(j.contains("image") && j["image"].is_string(), "annotation: 'image' must be a string");
  a.image = j["image"].get<std::string>();
  SM_CHECK(j.contains("schema") && j["schema"].is_string(), "annotation: 'schema' must be a string");
  a.schema = j["schema"].get<std::string>();
  SM_CHECK(a.schema == schema.name,
           "annotation is for schema '" << a.schema << "' but was read with '" << schema.name << "'");
  if (j.contains("pixel_spacing_mm") && !j["pixel_spacing_mm"].is_null()) {
    const auto& s = j["pixel_spacing_mm"];
    SM_CHECK(s.is_array() && s.size() == 2 && s[0].is_number() && s[1].is_number() &&
                 s[0].get<double>() > 0 && s[1].get<double>() > 0,
             "annotation: 'pixel_spacing_mm' must be null or [row, col] in mm (> 0), got " << s.dump());
    a.pixel_spacing_mm = std::array<double, 2>{s[0].get<double>(), s[1].get<double>()};
  }
  const size_t L = size_t(schema.landmark_count());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  a.points.assign(L, Point2{nan, nan});
  a.visible.assign(L, false);
  SM_CHECK(j.contains("landmarks") && j["landmarks"].is_object(),
           "annotation: 'landmarks' must be an object {name: [x, y]}");
  for (auto it = j["landmarks"].begin(); it != j["landmarks"].end(); ++it) {
    int i = schema.landmark_index(it.key());
    SM_CHECK(i >= 0, "annotation: landmark '" << it.key() << "' is not in schema '" << schema.name << "'");
    if (it.value().is_null()) continue;  // absent
    a.points[size_t(i)] = point_parse(it.value(), it.key());
    a.visible[size_t(i)] = true;
  }
  if (j.contains("visible")) {
    SM_CHECK(j["visible"].is_object(), "annotation: 'visible' must be an object {name: true|false}");
    for (auto it = j["visible"].begin(); it != j["visible"].end(); ++it) {
      int i = schema.landmark_index(it.key());
      SM_CHECK(i >= 0, "annotation: 'visible' names '" << it.key() << "', not in schema '" << schema.name << "'");
      SM_CHECK(it.value().is_boolean(), "annotation: visible['" << it.key() << "'] must be true or false");
      // A landmark without coordinates stays invisible whatever `visible` says.
      a.visible[size_t(i)] = it.value().get<bool>() && std::isfinite(a.points[size_t(i)][0]);
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!keys_known().count(it.key())) a.extra[it.key()] = it.value();
  return a;
}

nlohmann::json annotation_to_json(const Annotation& a, const Schema& schema) {
  const size_t L = size_t(schema.landmark_count());
  SM_CHECK(a.points.size() == L && a.visible.size() == L,
           "annotation has " << a.points.size() << " points / " << a.visible.size()
                             << " visibility flags, schema '" << schema.name << "' has " << L);
  nlohmann::json j = nlohmann::json::object();
  j["image"] = a.image;
  j["schema"] = a.schema.empty() ? schema.name : a.schema;
  j["pixel_spacing_mm"] = a.pixel_spacing_mm ? nlohmann::json{(*a.pixel_spacing_mm)[0], (*a.pixel_spacing_mm)[1]}
                                             : nlohmann::json(nullptr);
  j["landmarks"] = nlohmann::json::object();
  bool any_hidden = false;
  for (size_t i = 0; i < L; ++i) {
    const Point2& p = a.points[i];
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) continue;
    j["landmarks"][schema.landmarks[i]] = {p[0], p[1]};
    any_hidden = any_hidden || !a.visible[i];
  }
  if (any_hidden) {
    j["visible"] = nlohmann::json::object();
    for (size_t i = 0; i < L; ++i)
      if (std::isfinite(a.points[i][0])) j["visible"][schema.landmarks[i]] = bool(a.visible[i]);
  }
  for (auto it = a.extra.begin(); it != a.extra.end(); ++it) {
    SM_CHECK(!keys_known().count(it.key()), "annotation extra key '" << it.key() << "' clashes with a standard key");
    j[it.key()] = it.value();
  }
  return j;
}

Annotation annotation_read(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file_read_all(path));
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(path << ": not valid JSON: " << e.what());
  }
  try {
    SM_CHECK(j.is_object() && j.contains("schema") && j["schema"].is_string(),
             "annotation: 'schema' must be a string");
    return annotation_from_json(j, schema_lookup(j["schema"].get<std::string>()));
  } catch (const Error& e) {
    SM_FAIL(path << ": " << e.what());
  }
}

void annotation_write(const std::string& path, const Annotation& a, const Schema& schema) {
  file_write_atomic(path, annotation_to_json(a, schema).dump(1) + "\n");
}

}  // namespace sm
