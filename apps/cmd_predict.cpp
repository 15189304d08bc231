// `spinemark predict`: the 2-step pipeline (method.md §5) on a list of images. Per image
// OUT/<stem>.json (the prediction file of method.md §2.1) and OUT/<stem>.png (overlay), and one
// row of OUT/summary.csv. A bad image is reported and skipped; the others still run.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "models/image/image_io.h"
#include "models/pipeline/pipeline.h"
#include "models/pipeline/predict_inputs.h"
#include "models/pipeline/prediction_json.h"
#include "models/pipeline/prediction_overlay.h"
#include "tensor/check.h"
#include "tensor/device_backend.h"
#include "tensor/file_io.h"

namespace fs = std::filesystem;

namespace sm::app {

namespace {

struct PredictConfig {
  std::string model, data, manifest, out, device = "cpu", shard;
  std::vector<std::string> images;
  bool resume = false, no_overlay = false;
  int threads = 0;  // 0: OpenMP's default
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// "45s", "1m32s", "2h05m".
std::string duration_text(double s) {
  char buf[32];
  const long t = std::isfinite(s) ? long(std::lround(std::max(0.0, s))) : 0;
  if (t < 60)
    std::snprintf(buf, sizeof(buf), "%lds", t);
  else if (t < 3600)
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  return buf;
}


// Every input of the run (before sharding), from exactly one of --image, --data, --manifest.
std::vector<std::string> predict_inputs_list(const PredictConfig& cfg) {
  const int sources = int(!cfg.images.empty()) + int(!cfg.data.empty()) + int(!cfg.manifest.empty());
  SM_CHECK(sources == 1, "give exactly one of --image, --data or --manifest");
  if (!cfg.data.empty()) return predict_inputs_from_folder(cfg.data);
  if (!cfg.manifest.empty()) return predict_inputs_from_manifest(cfg.manifest);
  return cfg.images;
}

// The output folder, created when missing; refuses to write over any input image.
void output_prepare(const PredictConfig& cfg, const std::vector<std::string>& inputs) {
  std::error_code ec;
  fs::create_directories(cfg.out, ec);
  SM_CHECK(!ec && fs::is_directory(cfg.out), cfg.out << ": cannot create the output folder ("
                                                     << (ec ? ec.message() : "not a folder") << ")");
  std::set<fs::path> inputs_canonical;
  for (const auto& p : inputs) inputs_canonical.insert(fs::weakly_canonical(p, ec));
  for (const auto& p : inputs)
    for (const char* ext : {".json", ".png"}) {
      const fs::path target = fs::weakly_canonical(fs::path(cfg.out) / (predict_input_stem(p) + ext), ec);
      SM_CHECK(!inputs_canonical.count(target), target.string() << ": an input image would be overwritten by an output "
                                                                << "(choose another --out)");
    }
}

// The prediction of an earlier run, when OUT/<stem>.json holds one for this schema.
std::optional<nlohmann::json> prediction_existing(const std::string& json_path, const Schema& schema) {
  if (!file_exists(json_path)) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(file_read_all(json_path));
    if (j.is_object() && j.value("schema", std::string()) == schema.name && j.contains("landmarks")) return j;
  } catch (const std::exception&) {
  }
  return std::nullopt;  // unreadable or another model's: predicted again
}

struct ImageOutputs {
  std::string json_path, png_path;
};

// One image: read, run, then write the overlay and last the JSON (its presence marks the image
// done for --resume); on failure nothing of this image stays behind.
nlohmann::json predict_one(const Pipeline& pipeline, const std::string& image, const ImageOutputs& out,
                           bool overlay, const std::string& out_dir) {
  const Schema& schema = pipeline.spec().schema;
  const Image film = image_read(image);
  const PipelineResult r = pipeline.run(film);
  // "image" resolves as in an annotation (method.md §2.1): an absolute input stays absolute, a
  // relative one is written relative to the prediction file's folder.
  std::error_code ec;
  fs::path name = fs::path(image);
  if (name.is_relative()) name = fs::relative(fs::absolute(image), fs::absolute(out_dir), ec);
  if (ec || name.empty()) name = fs::absolute(image);
  const nlohmann::ordered_json j = prediction_to_json(schema, r, name.generic_string(), film.pixel_spacing_mm);
  if (overlay) overlay_write_png(out.png_path, prediction_overlay(film, schema, r));
  try {
    file_write_atomic(out.json_path, j.dump(2) + "\n");
  } catch (...) {
    if (overlay) fs::remove(out.png_path, ec);
    throw;
  }
  return j;
}

// "spinemark predict: <file>: <reason>", without repeating the file when the reason names it.
void error_report(const std::string& image, const std::string& what) {
  const bool named = what.compare(0, image.size() + 2, image + ": ") == 0;
  std::fprintf(stderr, "spinemark predict: %s\n", (named ? what : image + ": " + what).c_str());
}

struct Progress {
  Clock::time_point start = Clock::now(), last_print = Clock::now();
  int total = 0, done = 0, predicted = 0, resumed = 0, errors = 0;

  // A line for the first and last image and otherwise at most one a second.
  void step() {
    ++done;
    if (done > 1 && done < total && seconds_since(last_print) < 1.0) return;
    last_print = Clock::now();
    const double s = seconds_since(start), rate = predicted > 0 ? predicted / s : 0.0;
    const int left = total - done;
    std::fprintf(stderr, "[%d/%d] %.1f img/s ETA %s\n", done, total, rate,
                 rate > 0 ? duration_text(left / rate).c_str() : (left == 0 ? "0s" : "?"));
  }
};

// summary.csv (summary-K-of-N.csv for a shard, so that shards may share one folder), written
// also after errors, then the closing line; a non-zero exit code when any image failed.
void summary_finish(const PredictConfig& cfg, const PredictShard& shard, const Schema& schema,
                    const std::vector<PredictSummaryRow>& rows, const Progress& progress) {
  const std::string name = shard.count > 1
                               ? "summary-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ".csv"
                               : std::string("summary.csv");
  file_write_atomic((fs::path(cfg.out) / name).string(), predict_summary_csv(schema.angles, rows));
  const double s = seconds_since(progress.start);
  std::string resumed = progress.resumed > 0 ? ", " + std::to_string(progress.resumed) + " resumed" : "";
  std::fprintf(stderr, "predicted %d images (%d errors%s) in %.1f s, %.2f img/s\n", progress.predicted, progress.errors,
               resumed.c_str(), s, s > 0 ? progress.predicted / s : 0.0);
  if (progress.errors > 0) command_set_exit_code(1);
}

void predict_run(const PredictConfig& cfg) {
  if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
  std::vector<std::string> inputs = predict_inputs_list(cfg);
  predict_stems_check_unique(inputs);  // over all shards: shards share one output folder
  const PredictShard shard = cfg.shard.empty() ? PredictShard{} : predict_shard_parse(cfg.shard);
  inputs = predict_inputs_shard(inputs, shard);
  const Device device = device_select(cfg.device, "predict");
  const SpineModel model = spine_model_load(cfg.model);
  const Pipeline pipeline = Pipeline::from_model(model, device);
  output_prepare(cfg, inputs);  // after the model loaded: a bad model leaves no folder behind
  const Schema& schema = pipeline.spec().schema;

  Progress progress;
  progress.total = int(inputs.size());
  std::vector<PredictSummaryRow> rows;
  for (const auto& image : inputs) {
    const std::string base = (fs::path(cfg.out) / predict_input_stem(image)).string();
    const ImageOutputs out{base + ".json", base + ".png"};
    std::optional<nlohmann::json> earlier = cfg.resume ? prediction_existing(out.json_path, schema) : std::nullopt;
    if (earlier) {
      rows.push_back(predict_summary_row_from_json(*earlier, image, schema.angles));
      ++progress.resumed;
      progress.step();
      continue;
    }
    try {
      rows.push_back(predict_summary_row_from_json(predict_one(pipeline, image, out, !cfg.no_overlay, cfg.out), image,
                                                   schema.angles));
      ++progress.predicted;
    } catch (const std::exception& e) {
      error_report(image, e.what());
      PredictSummaryRow row;
      row.image = image, row.status = "error", row.error = e.what();
      rows.push_back(row);
      ++progress.errors;
    }
    progress.step();
  }
  summary_finish(cfg, shard, schema, rows, progress);
}

// CLI11 validator for --shard: the message of predict_shard_parse, or "" when valid.
std::string shard_validate(const std::string& text) {
  try {
    predict_shard_parse(text);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

void predict_setup(CLI::App& root) {
  auto cfg = std::make_shared<PredictConfig>();
  CLI::App* sub = root.add_subcommand("predict", "Corners, angles and quality flags of each image with a trained model");
  sub->add_option("--model", cfg->model, "model folder (model.json + detect/coarse/refine.safetensors)")->required();
  auto* images = sub->add_option("--image", cfg->images, "image file(s): PNG, JPEG, BMP, PGM or DICOM");
  auto* data = sub->add_option("--data", cfg->data, "folder: every image file in it, sorted by name");
  auto* manifest = sub->add_option("--manifest", cfg->manifest,
                                   "text file: one image path per line, or JSON lines with \"image\" "
                                   "(relative to the manifest's folder)");
  images->excludes(data)->excludes(manifest);
  data->excludes(manifest);
  sub->add_option("--out", cfg->out, "output folder: <stem>.json, <stem>.png, summary.csv")->required();
  sub->add_option("--device", cfg->device, "cpu, or cuda (needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->add_option("--shard", cfg->shard,
                  "K/N: only inputs i (0-based, sorted by path) with i mod N = K-1; writes summary-K-of-N.csv")
      ->check(CLI::Validator(shard_validate, "K/N", "shard"));
  sub->add_flag("--resume", cfg->resume, "skip images whose <stem>.json already holds a prediction");
  sub->add_option("--threads", cfg->threads, "CPU threads (default: OpenMP's)")->check(threads_range());
  sub->add_flag("--no-overlay", cfg->no_overlay, "do not write the <stem>.png overlay pictures");
  sub->callback([cfg] { predict_run(*cfg); });
}

}  // namespace

SM_REGISTER_COMMAND(predict, 51, predict_setup);

}  // namespace sm::app
