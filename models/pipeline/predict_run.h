// `spinemark predict` as a library call: the 2-step pipeline (method.md §5) on a list of images.
// Per image OUT/<stem>.json (the prediction file of method.md §2.1) and OUT/<stem>.png (overlay),
// and one row of OUT/summary.csv. A bad image is reported through the progress callback and
// skipped; the others still run. The caller prints (apps/cmd_predict.cpp).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace sm {

struct PredictOptions {
  std::string model;                // model folder (model.json + detect/coarse/refine.safetensors)
  std::vector<std::string> images;  // exactly one of images, data (a folder) and manifest
  std::string data, manifest;
  std::string out;                  // output folder, created when missing
  std::string device = "cpu";       // "cpu" or "cuda"
  std::string shard;                // "K/N" (predict_shard_parse), or "" for all inputs
  bool resume = false;              // keep images whose OUT/<stem>.json already holds a prediction
  bool no_overlay = false;          // no OUT/<stem>.png
  int threads = 0;                  // CPU threads; 0: OpenMP's default
};

// After each image: how far the run is. `error` is empty, or the reason this image failed
// (already naming the image when the reason starts with "<image>: ").
struct PredictProgress {
  int done = 0, total = 0;                     // images finished (any way) of this shard's inputs
  int predicted = 0, resumed = 0, errors = 0;  // of `done`
  double seconds = 0;                          // since the first image started
  std::string image;                           // the image just finished
  std::string error;
};
using PredictProgressCallback = std::function<void(const PredictProgress&)>;

struct PredictRunResult {
  int total = 0, predicted = 0, resumed = 0, errors = 0;
  double seconds = 0;        // from the first image to the summary written
  std::string summary_path;  // OUT/summary.csv, or OUT/summary-K-of-N.csv for a shard
};

// Lists the inputs (sharded), loads the model, prepares OUT (refusing to write over an input)
// and runs every image; writes the summary also after per-image errors. Throws sm::Error on a
// bad option, model or output folder (before any image); per-image failures only count.
PredictRunResult predict_run(const PredictOptions& options, const PredictProgressCallback& on_progress = {});

// "<image>: <reason>", without repeating the image when the reason already starts with it.
std::string predict_error_text(const std::string& image, const std::string& reason);

}  // namespace sm
