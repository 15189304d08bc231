// The prediction file of method.md §2.1: the annotation keys (image, schema, the verdict
// status and status_reasons, pixel_spacing_mm,
// landmarks, visible) plus step1_landmarks, confidence (landmark -> spread in pixels),
// confidence_mm (when the spacing is known), angles, step1_angles (all null for a rejected
// film), flags and timings_ms.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "models/pipeline/pipeline.h"

namespace sm {

nlohmann::ordered_json prediction_to_json(const Schema& schema, const PipelineResult& result, const std::string& image_name,
                                          const std::optional<std::array<double, 2>>& pixel_spacing_mm);

}  // namespace sm
