// predict_run (see predict_run.h): inputs, output folder, resume, per-image prediction + overlay
// + JSON, summary.csv.
#include "models/pipeline/predict_run.h"

#include <omp.h>

#include <filesystem>
#include <optional>
#include <set>

#include "models/image/image_io.h"
#include "models/nets/spine_model.h"
#include "models/pipeline/pipeline.h"
#include "models/pipeline/predict_inputs.h"
#include "models/pipeline/prediction_json.h"
#include "models/pipeline/prediction_overlay.h"
#include "tensor/check.h"
#include "tensor/device_backend.h"
#include "tensor/file_io.h"
#include "tensor/stopwatch.h"

namespace fs = std::filesystem;

namespace sm {

namespace {

// Every input of the run (before sharding), from exactly one of --image, --data, --manifest.
std::vector<std::string> predict_inputs_list(const PredictOptions& o) {
  const int sources = int(!o.images.empty()) + int(!o.data.empty()) + int(!o.manifest.empty());
  SM_CHECK(sources == 1, "give exactly one of --image, --data or --manifest");
  if (!o.data.empty()) return predict_inputs_from_folder(o.data);
  if (!o.manifest.empty()) return predict_inputs_from_manifest(o.manifest);
  return o.images;
}

// The output folder, created when missing; refuses to write over any input image.
void output_prepare(const PredictOptions& o, const std::vector<std::string>& inputs) {
  std::error_code ec;
  fs::create_directories(o.out, ec);
  SM_CHECK(!ec && fs::is_directory(o.out), o.out << ": cannot create the output folder ("
                                                 << (ec ? ec.message() : "not a folder") << ")");
  std::set<fs::path> inputs_canonical;
  for (const auto& p : inputs) inputs_canonical.insert(fs::weakly_canonical(p, ec));
  for (const auto& p : inputs)
    for (const char* ext : {".json", ".png"}) {
      const fs::path target = fs::weakly_canonical(fs::path(o.out) / (predict_input_stem(p) + ext), ec);
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

// summary.csv, or summary-K-of-N.csv for a shard, so that shards may share one folder.
std::string summary_path(const std::string& out, const PredictShard& shard) {
  const std::string name = shard.count > 1
                               ? "summary-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ".csv"
                               : std::string("summary.csv");
  return (fs::path(out) / name).string();
}

}  // namespace

std::string predict_error_text(const std::string& image, const std::string& reason) {
  const bool named = reason.compare(0, image.size() + 2, image + ": ") == 0;
  return named ? reason : image + ": " + reason;
}

PredictRunResult predict_run(const PredictOptions& o, const PredictProgressCallback& on_progress) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  std::vector<std::string> inputs = predict_inputs_list(o);
  predict_stems_check_unique(inputs);  // over all shards: shards share one output folder
  const PredictShard shard = o.shard.empty() ? PredictShard{} : predict_shard_parse(o.shard);
  inputs = predict_inputs_shard(inputs, shard);
  const Device device = device_select(o.device, "predict");
  const SpineModel model = spine_model_load(o.model);
  const Pipeline pipeline = Pipeline::from_model(model, device);
  output_prepare(o, inputs);  // after the model loaded: a bad model leaves no folder behind
  const Schema& schema = pipeline.spec().schema;

  const Stopwatch clock;
  PredictProgress p;
  p.total = int(inputs.size());
  std::vector<PredictSummaryRow> rows;
  for (const auto& image : inputs) {
    const std::string base = (fs::path(o.out) / predict_input_stem(image)).string();
    const ImageOutputs out{base + ".json", base + ".png"};
    p.image = image;
    p.error.clear();
    std::optional<nlohmann::json> earlier = o.resume ? prediction_existing(out.json_path, schema) : std::nullopt;
    if (earlier) {
      rows.push_back(predict_summary_row_from_json(*earlier, image, schema.angles));
      ++p.resumed;
    } else {
      try {
        rows.push_back(predict_summary_row_from_json(predict_one(pipeline, image, out, !o.no_overlay, o.out), image,
                                                     schema.angles));
        ++p.predicted;
      } catch (const std::exception& e) {
        p.error = e.what();
        PredictSummaryRow row;
        row.image = image, row.status = "error", row.error = e.what();
        rows.push_back(row);
        ++p.errors;
      }
    }
    ++p.done;
    p.seconds = clock.seconds();
    if (on_progress) on_progress(p);
  }
  PredictRunResult r;
  r.summary_path = summary_path(o.out, shard);
  file_write_atomic(r.summary_path, predict_summary_csv(schema.angles, rows));
  r.total = p.total, r.predicted = p.predicted, r.resumed = p.resumed, r.errors = p.errors;
  r.seconds = clock.seconds();
  return r;
}

}  // namespace sm
