// Evaluation of a model on an annotated dataset (method.md §3.2): run the 2-step pipeline on
// every image, then the metrics of step 1 alone and of step 1 + 2 side by side (per landmark,
// per vertebra, per angle; SMAPE for schemas with the AASCE Cobb rule), gross misses and how
// well the quality flags catch them. eval_write puts metrics.json, per-image predictions and
// the self-contained report.html in a folder.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/measure/metrics.h"
#include "models/pipeline/pipeline.h"
#include "train/data/dataset.h"

namespace sm {

struct EvalImage {
  std::string name;        // image file name (unique within the dataset)
  std::string image_path;  // resolved path (to draw overlays)
  Annotation gt;           // ground truth (schema order)
  PipelineResult pred;     // the pipeline's output on it
  std::vector<double> gt_angles;  // schema.angles order, from gt (AASCE: the stored-order rule)
};

// A landmark is a gross miss when it is off by more than a third of its vertebra's width
// (ground-truth width; for S1 its endplate length), step 1 + 2.
struct GrossMissStats {
  int landmarks = 0;        // landmarks counted (visible in the ground truth)
  int misses = 0;           // gross misses
  int misses_flagged = 0;   // of those, carrying a quality flag
  int good_flagged = 0;     // flagged landmarks that are not misses
  int images_with_miss = 0;
};

// How well the film-level verdict (docs/pipeline.md "Verdict") separates the films a reader must
// look at from the others. A film "needs review" when it has a gross miss (above), or, for the
// angle criterion, any angle off by more than kVerdictAngleErrorDeg (step 1 + 2; for AASCE, the
// Cobb angles). It is "caught" when its status is review or rejected; a film that needs nothing
// and is marked anyway is a false alarm.
inline constexpr double kVerdictAngleErrorDeg = 10.0;
struct VerdictStats {
  int ok = 0, review = 0, rejected = 0;
  int with_miss = 0, with_miss_caught = 0;            // films with a gross miss; of those, marked
  int without_miss = 0, without_miss_marked = 0;      // the others; of those, marked (false alarms)
  int angle_off = 0, angle_off_caught = 0;            // films with an angle error > 10°; marked
  int angle_fine = 0, angle_fine_marked = 0;          // films with every angle within 10°; marked
};

// A dataset entry that was not evaluated: its source (annotation file or manifest line) and why
// (an unreadable film, an unresolvable link, ...). Named in metrics.json and the report.
struct EvalSkip {
  std::string source, reason;
};

// Level identity of the predicted quadrilaterals (issue 19): each predicted corner is matched to
// the ground-truth vertebra whose corner of the same name is nearest. A quad whose corners match
// two or more vertebrae is "mixed" (the failure that costs a Cobb angle most); one whose corners
// all match another vertebra is "off level" (a shifted level).
struct QuadLevelStats {
  int quads = 0;                    // vertebrae with all corners in both prediction and truth
  int mixed = 0, off_level = 0;
  int images_mixed = 0, images_off_level = 0;
};

// Per vertebra of one image (step 1 + 2): 0 right level, 1 mixed, 2 off level, −1 not counted.
std::vector<int> eval_quad_levels(const Schema& schema, const EvalImage& image);

struct EvalResult {
  Schema schema;
  std::vector<EvalImage> images;
  std::vector<EvalSkip> skipped;  // entries left out; the metrics cover `images` only
  MetricsReport step1, final;  // metrics_compute over step1 / landmarks
  GrossMissStats gross;
  QuadLevelStats quad_levels;
  VerdictStats verdict;
  double seconds_per_image = 0;  // mean pipeline time
  nlohmann::json to_json() const;  // {"step1": metrics_to_json, "final": ..., "gross_misses": {...}, "verdict": {...}, "skipped": [...], ...}
};

// One image's summary (to_json's per-image rows and the report): mean Euclidean error over the
// landmarks visible in the ground truth (NaN when none), signed angle errors pred − gt in
// schema.angles order (NaN where either is not computable), and its gross misses (step 1 + 2).
struct EvalImageErrors {
  double mean_px_step1 = 0, mean_px_final = 0;
  std::vector<double> angle_error_step1, angle_error_final;
  int gross_misses = 0;
  int mixed_quads = 0;
};
EvalImageErrors eval_image_errors(const Schema& schema, const EvalImage& image);

// Per landmark of one image: 1 when it is a gross miss (definition above), 0 when not, -1 when it
// does not count (not visible in the ground truth, or its vertebra's width is not defined). A
// counted landmark the pipeline did not place (non-finite) is a miss.
std::vector<int> eval_gross_misses(const Schema& schema, const EvalImage& image);

using EvalProgress = std::function<void(int done, int total)>;

// Runs the pipeline on every entry (all of the pipeline's schema). An entry whose film cannot be
// read, or on which the pipeline fails, is added to `skipped` with the reason and the others go
// on (the caller reports them and exits non-zero).
EvalResult eval_run(const Pipeline& pipeline, const std::vector<DatasetEntry>& entries,
                    const EvalProgress& progress = {});

// Refuses an output folder that would mix eval's files with anything else: the data folder
// itself or a folder inside it (metrics.json and predictions there would be read as dataset
// entries later), or an existing folder holding files eval does not write (annotations, images,
// a metrics.json that is not eval's). `data` is the --data folder or manifest.
void eval_out_check(const std::string& out, const std::string& data);
// The metrics alone from finished predictions (eval_run calls it; tests use it directly).
void eval_compute(EvalResult& result);

// Writes (after eval_out_check) DIR/metrics.json, DIR/report.html (self-contained: every image embedded) and
// DIR/predictions/<stem>.json (method.md §2.1) for every image. `title` heads the report.
void eval_write(const std::string& dir, const EvalResult& result, const std::string& title);

// The headline numbers as a few lines of text: step 1 and step 1 + 2 side by side (relative
// errors, pixel errors, angle errors, SMAPE for a Cobb schema), gross misses and flags.
std::string eval_headline(const EvalResult& result);

// `spinemark eval` as one library call: loads the model, lists the dataset (entries it cannot
// read are skipped by name), runs the pipeline on every film, and writes metrics.json,
// predictions and report.html into `out` (checked by eval_out_check first; stale temporaries of
// a killed run removed). Fails when no film could be evaluated; otherwise the caller reports
// `skipped` and exits non-zero when it is not empty.
struct EvalOptions {
  std::string model, data, out;
  std::string title;              // report heading; empty: "spinemark eval: <model> on <data>"
  Device device = Device::CPU;
  std::function<void(const std::string&)> log;  // one line of news (the app prints it)
};
EvalResult eval_folder_run(const EvalOptions& options, const EvalProgress& progress = {});

}  // namespace sm
