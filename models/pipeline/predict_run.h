// `spinemark predict` as a library call: the 2-step pipeline (method.md §5) on a list of images.
// Per image OUT/<name>.json (the prediction file of method.md §2.1, plus the provenance keys of
// docs/pipeline.md) and OUT/<name>.png (overlay), and one row of OUT/summary.csv; <name> is the
// input's path relative to --data (predict_output_names). A bad image is reported through the
// progress callback and skipped; the others still run. What is guaranteed: docs/reliability.md,
// "Predict: what the outputs guarantee". The caller prints (apps/cmd_predict.cpp).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/pipeline/predict_inputs.h"

namespace sm {

struct PredictOptions {
  std::string model;                // model folder (model.json + detect/coarse/refine.safetensors)
  std::vector<std::string> images;  // exactly one of images, data (a folder) and manifest
  std::string data, manifest;
  std::string out;                  // output folder, created when missing
  std::string device = "cpu";       // "cpu" or "cuda"
  std::string shard;                // "K/N" (predict_shard_parse), or "" for all inputs
  bool resume = false;              // keep images whose OUT/<name>.json is a complete prediction of
                                    // this very input (path, size, mtime) by this very model
  bool no_overlay = false;          // no OUT/<name>.png
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
  std::string note;  // with --resume: why an existing OUT/<name>.json was not kept (it was predicted again)
};
using PredictProgressCallback = std::function<void(const PredictProgress&)>;

struct PredictRunResult {
  int total = 0, predicted = 0, resumed = 0, errors = 0;
  double seconds = 0;        // from the first image to the summary written
  std::string summary_path;  // OUT/summary.csv, or OUT/summary-K-of-N.csv for a shard
  std::vector<PredictSkipped> skipped;  // entries of --data that are not inputs, with the reason
};

// Lists the inputs (sharded), loads the model, prepares OUT and runs every image; writes the
// summary also after per-image errors. Before any image it throws sm::Error on a bad option or
// model, on an output folder that cannot be written, is locked by another predict run of the
// same shard, or holds a file where an output would go that predict did not write (an input, an
// annotation, ...). Per-image failures only count.
PredictRunResult predict_run(const PredictOptions& options, const PredictProgressCallback& on_progress = {});

// "<image>: <reason>", without repeating the image when the reason already starts with it.
std::string predict_error_text(const std::string& image, const std::string& reason);

// The value of "written_by" in every prediction file: the mark by which predict recognises its own
// outputs (and refuses to write over anything else).
constexpr const char* kPredictWrittenBy = "spinemark predict";
// The identity of a model folder recorded in its predictions: FNV-1a 64 of its model.json, as 16
// hexadecimal digits. model.json records the FNV-1a of each weights file, which loading checks,
// so the id covers the weights without reading them a second time.
std::string predict_model_id(const std::string& model_dir);

}  // namespace sm
