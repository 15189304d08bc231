// The prediction file of method.md §2.1 (prediction_json.h). Built as an ordered_json so that a
// reader sees the keys in the documented order; NaN coordinates, spreads and angles become null.
#include "models/pipeline/prediction_json.h"

#include <cmath>

#include "tensor/check.h"

namespace sm {

namespace {

using OJson = nlohmann::ordered_json;

OJson number_or_null(double v) { return std::isfinite(v) ? OJson(v) : OJson(nullptr); }

OJson point_or_null(const Point2& p) {
  if (!std::isfinite(p[0]) || !std::isfinite(p[1])) return OJson(nullptr);
  return OJson::array({p[0], p[1]});
}

// {landmark: [x, y] or null} in schema order.
OJson landmarks_object(const Schema& schema, const std::vector<Point2>& points) {
  OJson out = OJson::object();
  for (int i = 0; i < schema.landmark_count(); ++i) out[schema.landmarks[size_t(i)]] = point_or_null(points[size_t(i)]);
  return out;
}

// {name: value × factor or null}; names and values have equal sizes (checked by the caller).
OJson values_object(const std::vector<std::string>& names, const std::vector<double>& values, double factor = 1.0) {
  OJson out = OJson::object();
  for (size_t i = 0; i < names.size(); ++i) out[names[i]] = number_or_null(values[i] * factor);
  return out;
}

void result_check_sizes(const Schema& schema, const PipelineResult& r) {
  const size_t l = size_t(schema.landmark_count()), a = schema.angles.size();
  SM_CHECK(r.landmarks.size() == l && r.step1.size() == l && r.spread_px.size() == l,
           "prediction_to_json: result holds " << r.landmarks.size() << " landmarks, schema '" << schema.name
                                               << "' has " << l);
  SM_CHECK(r.angles.size() == a && r.step1_angles.size() == a,
           "prediction_to_json: result holds " << r.angles.size() << " angles, schema '" << schema.name << "' has " << a);
}

OJson prediction_ordered(const Schema& schema, const PipelineResult& r, const std::string& image_name,
                         const std::optional<std::array<double, 2>>& spacing) {
  result_check_sizes(schema, r);
  OJson j = OJson::object();
  j["image"] = image_name;
  j["schema"] = schema.name;
  // The film-level verdict first, for a consumer to key on (docs/pipeline.md "Verdict").
  j["status"] = r.status;
  j["status_reasons"] = r.status_reasons;
  j["pixel_spacing_mm"] = spacing ? OJson::array({(*spacing)[0], (*spacing)[1]}) : OJson(nullptr);
  j["landmarks"] = landmarks_object(schema, r.landmarks);
  OJson visible = OJson::object();
  for (int i = 0; i < schema.landmark_count(); ++i) {
    const Point2& p = r.landmarks[size_t(i)];
    visible[schema.landmarks[size_t(i)]] = std::isfinite(p[0]) && std::isfinite(p[1]);
  }
  j["visible"] = visible;
  j["step1_landmarks"] = landmarks_object(schema, r.step1);
  // The detection network's level centres (step 1a), by vertebra name: what crops are placed on.
  OJson centres = OJson::object();
  for (int v = 0; v < schema.vertebra_count() && size_t(v) < r.centres.size(); ++v) {
    const Point2& p = r.centres[size_t(v)];
    centres[schema.vertebrae[size_t(v)].name] = std::isfinite(p[0]) && std::isfinite(p[1]) ? OJson::array({p[0], p[1]}) : OJson(nullptr);
  }
  j["step1_centres"] = centres;
  j["confidence"] = values_object(schema.landmarks, r.spread_px);
  // One mm per pixel figure for the spread, which has no direction: the mean of the two spacings.
  if (spacing) j["confidence_mm"] = values_object(schema.landmarks, r.spread_px, 0.5 * ((*spacing)[0] + (*spacing)[1]));
  // A rejected film has no angle to use: every value null (the landmarks stay, for inspection).
  const bool rejected = r.status == "rejected";
  const std::vector<double> none(schema.angles.size(), NAN);
  j["angles"] = values_object(schema.angles, rejected ? none : r.angles);
  j["step1_angles"] = values_object(schema.angles, rejected ? none : r.step1_angles);
  j["flags"] = r.flags;
  OJson timings = OJson::object();
  for (const auto& [stage, ms] : r.timings_ms) timings[stage] = number_or_null(ms);
  j["timings_ms"] = timings;
  // Not in the list of §2.1 but allowed there: the angle rules that need the film height read it.
  j["image_size"] = OJson::array({r.image_width, r.image_height});
  return j;
}

}  // namespace

nlohmann::ordered_json prediction_to_json(const Schema& schema, const PipelineResult& result, const std::string& image_name,
                                          const std::optional<std::array<double, 2>>& pixel_spacing_mm) {
  // ordered_json keeps the documented key order and the schema's landmark order in the file.
  return prediction_ordered(schema, result, image_name, pixel_spacing_mm);
}

}  // namespace sm
