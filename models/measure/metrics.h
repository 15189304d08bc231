// Evaluation metrics of method.md §3.2: per-landmark Euclidean error (px, mm), the paper's
// relative x/y error in % of the vertebra's width/height, median/mean/p90 per landmark, per
// vertebra and overall; angle errors (median and mean absolute, Pearson r) and AASCE SMAPE.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"

namespace sm {

struct Stats {
  int count = 0;
  double median = 0, mean = 0, p90 = 0;  // NaN when count == 0
};

// Ignores NaN values. Percentiles interpolate linearly between order statistics (numpy default).
Stats stats_compute(std::vector<double> values);
double percentile(std::vector<double> sorted_values, double q);  // q in [0, 1]; input must be sorted
// Pearson correlation over pairs where both are finite; NaN with < 2 pairs or zero variance.
double pearson_r(const std::vector<double>& x, const std::vector<double>& y);

// One landmark's error on one image; NaN where not defined (landmark absent, no spacing, ...).
struct LandmarkError {
  double px = 0, mm = 0;        // Euclidean distance
  double rel_x = 0, rel_y = 0;  // |Δx| / width·100, |Δy| / height·100 (image frame, GT dimensions)
};

// Width = mean endplate length; height = mean wall length; a vertebra without walls (S1) uses
// its endplate length for both (method.md §3.2). NaN when corners are absent.
std::array<double, 2> vertebra_dimensions(const Schema& schema, const std::vector<Point2>& points, int vertebra);

// gt_visible marks the landmarks that count; spacing (row, col) in mm gives the mm error.
std::vector<LandmarkError> landmark_errors(const Schema& schema, const std::vector<Point2>& gt,
                                           const std::vector<bool>& gt_visible, const std::vector<Point2>& pred,
                                           const std::optional<std::array<double, 2>>& spacing_mm);

struct MetricsSample {
  std::vector<Point2> gt, pred;  // (L,) schema order
  std::vector<bool> visible;     // (L,) ground-truth visibility; empty = all visible
  std::optional<std::array<double, 2>> pixel_spacing_mm;
  std::vector<double> gt_angles, pred_angles;  // aligned with schema.angles; empty = none
};

struct ErrorStats {
  Stats px, mm, rel_x, rel_y;
};

struct AngleStats {
  int count = 0;
  double median_abs = 0, mean_abs = 0, pearson_r = 0;
};

struct MetricsReport {
  std::string schema;
  int images = 0;
  std::vector<ErrorStats> per_landmark;  // schema landmark order
  std::vector<ErrorStats> per_vertebra;  // schema vertebra order
  ErrorStats overall;
  std::vector<AngleStats> per_angle;     // schema angle order
  std::optional<double> smape_percent;   // schemas with an aasce_cobb rule, over images having all 3
};

MetricsReport metrics_compute(const Schema& schema, const std::vector<MetricsSample>& samples);
nlohmann::json metrics_to_json(const Schema& schema, const MetricsReport& report);

}  // namespace sm
