// predict_run (see predict_run.h): inputs, output folder (lock, refusals), resume (what counts as
// done), per-image prediction + overlay + JSON with provenance, summary.csv.
#include "models/pipeline/predict_run.h"

#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
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
#include "tensor/rng.h"
#include "tensor/stopwatch.h"

namespace fs = std::filesystem;

namespace sm {

namespace {

// Every input of the run (before sharding), from exactly one of --image, --data, --manifest, with
// the folder its output names are relative to ("": the inputs' common folder).
struct InputList {
  std::vector<std::string> images;
  std::vector<PredictSkipped> skipped;
  std::string names_base;
};

InputList predict_inputs_list(const PredictOptions& o) {
  const int sources = int(!o.images.empty()) + int(!o.data.empty()) + int(!o.manifest.empty());
  SM_CHECK(sources == 1, "give exactly one of --image, --data or --manifest");
  if (!o.data.empty()) {
    PredictListing listing = predict_folder_list(o.data, o.out);
    return {std::move(listing.images), std::move(listing.skipped), o.data};
  }
  if (!o.manifest.empty()) return {predict_inputs_from_manifest(o.manifest), {}, ""};
  return {o.images, {}, ""};
}

struct Job {
  std::string image;
  std::string json_path, png_path;  // OUT/<name>.json, OUT/<name>.png
};

// A lock file held with flock(2) for the whole run (released when the process ends, however it
// ends); it holds the pid of a holder, for the message of the run that finds it taken.
class OutputLock {
 public:
  OutputLock() = default;
  OutputLock(const std::string& path, bool exclusive, const std::string& who_else) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    SM_CHECK(fd_ >= 0, path << ": cannot create the lock file (" << std::strerror(errno) << ")");
    if (::flock(fd_, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {0};
      const ssize_t n = ::pread(fd_, buf, sizeof(buf) - 1, 0);
      ::close(fd_);
      fd_ = -1;
      const int pid = n > 0 ? std::atoi(buf) : 0;
      SM_CHECK(err != EWOULDBLOCK, fs::path(path).parent_path().string()
                                       << ": another spinemark predict" << (pid > 0 ? " (pid " + std::to_string(pid) + ")" : "")
                                       << " is writing into this folder" << who_else << " (lock " << path
                                       << "); wait for it to end or choose another --out");
      SM_FAIL(path << ": cannot lock (" << std::strerror(err) << ")");
    }
    char pid[16];
    const int len = std::snprintf(pid, sizeof(pid), "%10d\n", int(::getpid()));
    (void)!::pwrite(fd_, pid, size_t(len), 0);  // the pid is for messages only: a failure is harmless
  }
  OutputLock(OutputLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OutputLock& operator=(OutputLock&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~OutputLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

// Fails naming OUT when no file can be created in it (read-only, no permission, ...).
void output_check_writable(const std::string& out) {
  const std::string probe = (fs::path(out) / (".spinemark-predict-probe." + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SM_CHECK(fd >= 0, out << ": the output folder cannot be written (" << std::strerror(errno) << ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

// Whether the bytes of a file at an output path hold predict's mark: the "written_by" key of a
// prediction (also in a damaged one: the key comes first), or the tEXt chunk of an overlay.
bool file_written_by_predict(const std::string& path, bool png) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  const std::string bytes = file_read_all(path);
  if (png) return bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && bytes.find(std::string("tEXtSoftware") + '\0' + kPredictWrittenBy) < 80;
  try {
    const nlohmann::json j = nlohmann::json::parse(bytes);
    return j.is_object() && j.value("written_by", std::string()) == kPredictWrittenBy;
  } catch (const std::exception&) {
    return bytes.find(std::string("\"written_by\": \"") + kPredictWrittenBy + "\"") != std::string::npos;
  }
}

// OUT created when missing and checked writable, locked for this run (see docs/reliability.md),
// and refused when an output would go over an input or over any file predict did not write.
struct OutputLocks {
  OutputLock folder, shard;
};

OutputLocks output_prepare(const PredictOptions& o, const std::vector<Job>& jobs, const PredictShard& shard,
                          const std::string& summary) {
  std::error_code ec;
  fs::create_directories(o.out, ec);
  SM_CHECK(!ec && fs::is_directory(o.out), o.out << ": cannot create the output folder ("
                                                 << (ec ? ec.message() : "not a folder") << ")");
  output_check_writable(o.out);
  // A whole run holds the folder's lock alone; shards hold it shared, each its own shard's alone.
  const std::string folder_lock = (fs::path(o.out) / kPredictLockFile).string();
  OutputLocks locks;
  locks.folder = OutputLock(folder_lock, shard.count == 1, "");
  if (shard.count > 1) {
    const std::string name = ".spinemark-predict-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ".lock";
    locks.shard = OutputLock((fs::path(o.out) / name).string(), true,
                             " as shard " + std::to_string(shard.index) + "/" + std::to_string(shard.count));
  }
  std::set<fs::path> inputs_canonical;
  for (const auto& j : jobs) inputs_canonical.insert(fs::weakly_canonical(j.image, ec));
  for (const auto& j : jobs)
    for (const std::string* target : {&j.json_path, &j.png_path}) {
      if (target == &j.png_path && o.no_overlay) continue;  // left as it is
      SM_CHECK(!inputs_canonical.count(fs::weakly_canonical(*target, ec)),
               *target << ": an input image would be overwritten by an output (choose another --out)");
      const bool png = target == &j.png_path;
      if (fs::exists(fs::symlink_status(*target, ec)) && !file_written_by_predict(*target, png))
        SM_FAIL(*target << ": exists and was not written by spinemark predict (" << (png ? "an overlay" : "a prediction")
                        << " would replace it; an annotation or other file is never overwritten): choose another --out "
                           "or move it away");
    }
  if (fs::exists(fs::symlink_status(summary, ec))) {
    const std::string head = fs::is_regular_file(summary, ec) ? file_read_all(summary).substr(0, 13) : "";
    SM_CHECK(head == "image,status,", summary << ": exists and is not a summary written by spinemark predict; "
                                                 "choose another --out or move it away");
  }
  return locks;
}

// An overlay PNG carrying predict's mark: a tEXt chunk "Software" = "spinemark predict" right
// after the header, so that a later run knows the file as its own.
std::string overlay_png_marked(const RgbImage& canvas) {
  return png_encode(canvas.rgb.data(), canvas.width, canvas.height, 3, 8, {{"Software", kPredictWrittenBy}});
}

// What identifies an input in its prediction: the resolved absolute path (escaped when it is not
// UTF-8, with its bytes in hex then), the size and the modification time.
nlohmann::ordered_json input_identity(const std::string& image) {
  std::error_code ec;
  fs::path path = fs::weakly_canonical(fs::absolute(image), ec);
  if (ec) path = fs::absolute(image).lexically_normal();
  struct stat st;
  SM_CHECK(::stat(path.c_str(), &st) == 0, image << ": cannot read the file (" << std::strerror(errno) << ")");
  nlohmann::ordered_json j;
  j["path"] = predict_text_escaped(path.string());
  if (!predict_text_is_utf8(path.string())) j["path_hex"] = predict_text_hex(path.string());
  j["size"] = uint64_t(st.st_size);
  j["mtime_ns"] = int64_t(st.st_mtim.tv_sec) * 1000000000 + int64_t(st.st_mtim.tv_nsec);
  return j;
}

// "" when `j` is a complete prediction of the input `input` by the model `model_id` for `schema`;
// otherwise why not.
std::string prediction_check(const nlohmann::json& j, const Schema& schema, const std::string& model_id,
                             const nlohmann::ordered_json& input) {
  if (!j.is_object()) return "not a JSON object";
  if (j.value("written_by", std::string()) != kPredictWrittenBy) return "not written by spinemark predict";
  if (j.value("schema", std::string()) != schema.name) return "not a prediction of schema '" + schema.name + "'";
  const auto& m = j.contains("model") ? j["model"] : nlohmann::json();
  if (!m.is_object() || !m.contains("id") || m["id"] != model_id) return "written by another model (not " + model_id + ")";
  const auto& in = j.contains("input") ? j["input"] : nlohmann::json();
  if (!in.is_object() || in.value("path", std::string()) != input["path"].get<std::string>() ||
      in.value("path_hex", std::string()) != input.value("path_hex", std::string()))
    return "a prediction of another file";
  const auto same_integer = [&in, &input](const char* key) {
    return in.contains(key) && in[key].is_number_integer() && in[key].get<int64_t>() == input[key].get<int64_t>();
  };
  if (!same_integer("size") || !same_integer("mtime_ns"))
    return "the input changed since (size or modification time)";
  if (!j.contains("image") || !j["image"].is_string()) return "no \"image\"";
  const auto is_point = [](const nlohmann::json& p) {
    return p.is_null() || (p.is_array() && p.size() == 2 && p[0].is_number() && p[1].is_number());
  };
  for (const char* key : {"landmarks", "step1_landmarks", "confidence"}) {
    if (!j.contains(key) || !j[key].is_object() || j[key].size() != schema.landmarks.size()) return std::string("incomplete \"") + key + "\"";
    for (const auto& name : schema.landmarks) {
      if (!j[key].contains(name)) return std::string("incomplete \"") + key + "\" (no " + name + ")";
      const auto& v = j[key][name];
      if (key[0] == 'c' ? !(v.is_null() || v.is_number()) : !is_point(v)) return std::string("bad \"") + key + "\" of " + name;
    }
  }
  if (!j.contains("angles") || !j["angles"].is_object()) return "no \"angles\"";
  for (const auto& name : schema.angles)
    if (!j["angles"].contains(name) || !(j["angles"][name].is_null() || j["angles"][name].is_number()))
      return "incomplete \"angles\" (no " + name + ")";
  if (!j.contains("flags") || !j["flags"].is_array()) return "no \"flags\"";
  for (const auto& f : j["flags"])
    if (!f.is_string()) return "bad \"flags\"";
  if (!j.contains("timings_ms") || !j["timings_ms"].is_object()) return "no \"timings_ms\"";
  // The film-level verdict (docs/pipeline.md): a prediction without one is not complete.
  const std::string status = j.contains("status") && j["status"].is_string() ? j["status"].get<std::string>() : "";
  if (status != "ok" && status != "review" && status != "rejected") return "no film-level \"status\"";
  if (!j.contains("status_reasons") || !j["status_reasons"].is_array()) return "no \"status_reasons\"";
  for (const auto& why : j["status_reasons"])
    if (!why.is_string()) return "bad \"status_reasons\"";
  return "";
}

// The prediction of an earlier run when OUT/<name>.json is a complete one of this input by this
// model; otherwise nothing, and `why` says why (empty when there was no file).
std::optional<nlohmann::json> prediction_existing(const std::string& json_path, const Schema& schema,
                                                  const std::string& model_id, const nlohmann::ordered_json& input,
                                                  std::string& why) {
  why.clear();
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(json_path, ec))) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(file_read_all(json_path));
    why = prediction_check(j, schema, model_id, input);
    if (why.empty()) return j;
  } catch (const std::exception& e) {
    why = std::string("not valid JSON (") + e.what() + ")";
  }
  return std::nullopt;
}

struct ModelRecord {
  std::string path, id;  // the model folder (absolute, escaped), predict_model_id
};

// One image: read, run, then write the overlay and last the JSON (its presence marks the image
// done for --resume); on failure nothing of this image stays behind.
nlohmann::ordered_json predict_one(const Pipeline& pipeline, const Job& job, const nlohmann::ordered_json& input,
                                   const ModelRecord& model, bool overlay) {
  const Schema& schema = pipeline.spec().schema;
  const Image film = image_read(job.image);
  const PipelineResult r = pipeline.run(film);
  // "image" resolves as in an annotation (method.md §2.1): an absolute input stays absolute, a
  // relative one is written relative to the prediction file's folder.
  std::error_code ec;
  const fs::path folder = fs::path(job.json_path).parent_path();
  fs::path name = fs::path(job.image);
  if (name.is_relative()) name = fs::relative(fs::absolute(job.image), fs::absolute(folder), ec);
  if (ec || name.empty()) name = fs::absolute(job.image);
  const nlohmann::ordered_json p =
      prediction_to_json(schema, r, predict_text_escaped(name.generic_string()), film.pixel_spacing_mm);
  nlohmann::ordered_json j;  // predict's mark first (found even in a damaged file), then the prediction
  j["written_by"] = kPredictWrittenBy;
  for (const auto& [key, value] : p.items()) j[key] = value;
  j["model"] = {{"path", model.path}, {"id", model.id}};
  j["input"] = input;
  fs::create_directories(folder, ec);
  SM_CHECK(!ec, folder.string() << ": cannot create the folder (" << ec.message() << ")");
  if (overlay) file_write_atomic(job.png_path, overlay_png_marked(prediction_overlay(film, schema, r)));
  try {
    file_write_atomic(job.json_path, j.dump(2) + "\n");
  } catch (...) {
    if (overlay) fs::remove(job.png_path, ec);
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

std::string predict_model_id(const std::string& model_dir) {
  return hash_string_hex(file_read_all((fs::path(model_dir) / kModelJson).string()));
}

PredictRunResult predict_run(const PredictOptions& o, const PredictProgressCallback& on_progress) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  SM_CHECK(!o.out.empty(), "give an output folder (--out)");
  InputList listed = predict_inputs_list(o);
  // Names over all shards: shards share one output folder.
  const std::vector<std::string> names = predict_output_names(listed.images, listed.names_base);
  std::map<std::string, std::string> name_of;
  for (size_t i = 0; i < names.size(); ++i) name_of[listed.images[i]] = names[i];
  const PredictShard shard = o.shard.empty() ? PredictShard{} : predict_shard_parse(o.shard);
  std::vector<Job> jobs;
  for (const auto& image : predict_inputs_shard(listed.images, shard)) {
    const std::string base = (fs::path(o.out) / name_of.at(image)).string();
    jobs.push_back({image, base + ".json", base + ".png"});
  }
  const Device device = device_select(o.device, "predict");
  const SpineModel spine_model = spine_model_load(o.model);
  const ModelRecord model{predict_text_escaped(fs::absolute(o.model).lexically_normal().string()), predict_model_id(o.model)};
  const Pipeline pipeline = Pipeline::from_model(spine_model, device);
  PredictRunResult r;
  r.summary_path = summary_path(o.out, shard);
  r.skipped = std::move(listed.skipped);
  // After the model loaded: a bad model leaves no folder behind. Held until the summary is written.
  const OutputLocks locks = output_prepare(o, jobs, shard, r.summary_path);
  const Schema& schema = pipeline.spec().schema;

  const Stopwatch clock;
  PredictProgress p;
  p.total = int(jobs.size());
  std::vector<PredictSummaryRow> rows;
  for (const auto& job : jobs) {
    p.image = job.image;
    p.error.clear();
    p.note.clear();
    try {
      const nlohmann::ordered_json input = input_identity(job.image);
      std::string why;
      std::optional<nlohmann::json> earlier =
          o.resume ? prediction_existing(job.json_path, schema, model.id, input, why) : std::nullopt;
      if (!why.empty()) p.note = job.json_path + ": not kept (" + why + "); predicted again";
      if (earlier) {
        rows.push_back(predict_summary_row_from_json(*earlier, job.image, schema.angles));
        ++p.resumed;
      } else {
        const nlohmann::json j = nlohmann::json::parse(predict_one(pipeline, job, input, model, !o.no_overlay).dump());
        rows.push_back(predict_summary_row_from_json(j, job.image, schema.angles));
        ++p.predicted;
      }
    } catch (const std::exception& e) {
      p.error = e.what();
      PredictSummaryRow row;
      row.image = job.image, row.status = "error", row.error = e.what();
      rows.push_back(row);
      ++p.errors;
    }
    ++p.done;
    p.seconds = clock.seconds();
    if (on_progress) on_progress(p);
  }
  file_write_atomic(r.summary_path, predict_summary_csv(schema.angles, rows));
  r.total = p.total, r.predicted = p.predicted, r.resumed = p.resumed, r.errors = p.errors;
  r.seconds = clock.seconds();
  return r;
}

}  // namespace sm
