// What `spinemark predict` works on: the list of input images (explicit files, the image files
// of a folder, or a manifest), the deterministic shard of that list, unique output stems, and
// the rows of its summary.csv. Kept out of apps/ so that the tests can reach them.
#pragma once
#include <cstdlib>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sm {

// The lock file that predict holds in its output folder (predict_run.h); its presence also marks
// an output folder of predict, which a --data listing leaves out.
constexpr const char* kPredictLockFile = ".spinemark-predict.lock";

// Image files by extension (case-insensitive): png, jpg, jpeg, bmp, pgm, dcm, dicom. Annotation
// *.json files and anything else are not images.
bool predict_path_is_image(const std::string& path);

// An entry of a --data folder that is not an input, and why (a broken link, a FIFO, a file that is
// not an image by name or content, a hidden entry, an output folder of predict, ...).
struct PredictSkipped {
  std::string path, reason;
};
struct PredictListing {
  std::vector<std::string> images;     // sorted by path
  std::vector<PredictSkipped> skipped;  // sorted by path
};
// The image files under `dir`, recursively (sub-folders are walked, links to folders are not
// followed): those with an image extension, and files without extension whose first bytes are
// DICOM's. Every other entry is listed in `skipped` with its reason; so are hidden entries (name
// starting with '.'), the folder `exclude` (predict's --out, when it lies inside `dir`) and any
// folder holding predict's lock file (an output folder of an earlier run). Throws naming `dir`
// when it is not a folder or holds no image file.
PredictListing predict_folder_list(const std::string& dir, const std::string& exclude = "");
// predict_folder_list(dir).images.
std::vector<std::string> predict_inputs_from_folder(const std::string& dir);
// A manifest: one image path per line, or JSON lines with an "image" key; relative paths are
// relative to the manifest's folder; blank lines and lines starting with '#' are skipped; a UTF-8
// byte-order mark is ignored. Throws naming "manifest:line" on a bad line, and the manifest when
// it lists nothing.
std::vector<std::string> predict_inputs_from_manifest(const std::string& manifest);

// Shard K of N (1-based K): after sorting all inputs by path, input i (0-based) belongs to shard
// (i mod N) + 1. Shards 1..N of the same inputs cover every input exactly once.
struct PredictShard {
  int index = 1;  // K
  int count = 1;  // N
};
// Parses "K/N" (decimal digits only, 1 <= K <= N <= 100000; numbers too large for any integer
// type are refused too); throws sm::Error with the expected format otherwise.
//   "auto"    K and N from a Slurm job array: K = SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN + 1,
//             N = SLURM_ARRAY_TASK_COUNT (so `--array=0-7` and `--array=1-8` both give 1/8..8/8);
//   "auto/N"  K from the scheduler's 0-based index (Kubernetes Indexed Job: JOB_COMPLETION_INDEX,
//             which carries no count; or Slurm's task id as above), N as given.
// `env` reads an environment variable (null when unset); tests pass their own.
PredictShard predict_shard_parse(const std::string& text,
                                 const std::function<const char*(const char*)>& env = [](const char* k) { return std::getenv(k); });
std::vector<std::string> predict_inputs_shard(std::vector<std::string> inputs, const PredictShard& shard);

// The output name of each input (OUT/<name>.json, OUT/<name>.png), '/'-separated, without the
// last extension: the input's path relative to `base` (the --data folder), or, when `base` is
// empty, relative to the deepest folder holding every input (one input: its file name). So films
// of different folders never collide (patient1/IM0001, patient2/IM0001). Throws naming both files
// when two inputs still get one name (a.png and a.dcm in one folder), and on an input without a
// file name.
std::vector<std::string> predict_output_names(const std::vector<std::string>& inputs, const std::string& base = "");

// Whether `s` is valid UTF-8 (JSON text must be).
bool predict_text_is_utf8(const std::string& s);
// `s` itself when it is valid UTF-8; otherwise `s` with '\' written "\\" and every byte that is
// not part of a valid UTF-8 sequence written "\xNN" (so that a file name can go into JSON).
std::string predict_text_escaped(const std::string& s);
// Lower-case hexadecimal of the bytes of `s`.
std::string predict_text_hex(const std::string& s);

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
