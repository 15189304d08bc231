// What `spinemark predict` works on: the list of input images (explicit files, the image files
// of a folder, or a manifest), the deterministic shard of that list, unique output stems, and
// the rows of its summary.csv. Kept out of apps/ so that the tests can reach them.
#pragma once
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sm {

// Image files by extension (case-insensitive): png, jpg, jpeg, bmp, pgm, dcm, dicom. Annotation
// *.json files and anything else are not images.
bool predict_path_is_image(const std::string& path);
// The image files directly in `dir` (no subfolders), sorted by name: those with an image
// extension, and files without extension whose first bytes are DICOM's. Throws naming `dir`
// when it is not a folder or holds no image file.
std::vector<std::string> predict_inputs_from_folder(const std::string& dir);
// A manifest: one image path per line, or JSON lines with an "image" key; relative paths are
// relative to the manifest's folder; blank lines and lines starting with '#' are skipped.
// Throws naming "manifest:line" on a bad line, and the manifest when it lists nothing.
std::vector<std::string> predict_inputs_from_manifest(const std::string& manifest);

// Shard K of N (1-based K): after sorting all inputs by path, input i (0-based) belongs to shard
// (i mod N) + 1. Shards 1..N of the same inputs cover every input exactly once.
struct PredictShard {
  int index = 1;  // K
  int count = 1;  // N
};
// Parses "K/N" (1 <= K <= N <= 100000); throws sm::Error with the expected format otherwise.
PredictShard predict_shard_parse(const std::string& text);
std::vector<std::string> predict_inputs_shard(std::vector<std::string> inputs, const PredictShard& shard);

// The file name without folder and last extension: OUT/<stem>.json and OUT/<stem>.png.
std::string predict_input_stem(const std::string& path);
// Throws naming both files when two inputs share a stem (their outputs would collide).
void predict_stems_check_unique(const std::vector<std::string>& inputs);

// One row of summary.csv: image, status, the schema's angles, flag count, pipeline
// milliseconds, error message. status: the film's verdict from its prediction file ("ok",
// "review", "rejected"; docs/pipeline.md "Verdict"), or "error" when the image could not be
// predicted at all.
struct PredictSummaryRow {
  std::string image;
  std::string status = "ok";
  std::vector<double> angles;  // in the order of the angle names given to the CSV writer
  int flags = 0;
  double ms = std::numeric_limits<double>::quiet_NaN();
  std::string error;
};

// A row from a prediction file (method.md §2.1): its "status" ("review" when it has none or
// an unknown one: written before the verdict existed), angles by name (null -> NaN), the
// number of flags, and the pipeline time (timings_ms "total" when present, else the sum of the stages).
PredictSummaryRow predict_summary_row_from_json(const nlohmann::json& prediction, const std::string& image,
                                                const std::vector<std::string>& angle_names);
// The CSV text: header "image,status,<angles...>,flags,ms,error", one line per row; fields with
// commas, quotes or line breaks are quoted; missing numbers are empty.
std::string predict_summary_csv(const std::vector<std::string>& angle_names, const std::vector<PredictSummaryRow>& rows);

}  // namespace sm
