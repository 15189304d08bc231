// A whole training run (see train_run.h).
#include "train/run/train_run.h"

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <omp.h>

#include "build_info.h"
#include "layers/dsnt.h"
#include "layers/weights.h"
#include "models/geometry/letterbox.h"
#include "models/image/image_io.h"
#include "models/pipeline/pipeline.h"
#include "tensor/check.h"
#include "tensor/device_backend.h"
#include "tensor/file_io.h"
#include "tensor/kernels/cpu_kernels_select.h"
#include "tensor/parallel_for.h"
#include "tensor/stopwatch.h"
#include "train/data/spine_samples.h"
#include "train/eval/eval.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

struct Run {
  TrainConfig cfg;
  TrainRunOptions opt;
  fs::path dir;
  ModelSpec spec;
  SpineModel model;
  Device device = Device::CPU;  // where the networks train, validate and are evaluated
  std::vector<DatasetEntry> train, val;
  std::ofstream log_file;

  // Rank 0 of a data-parallel run (or the one process) writes the run folder and logs.
  bool writes() const { return !opt.comm || opt.comm->rank() == 0; }
  void log(const std::string& line) {
    if (!writes()) return;
    if (opt.log) opt.log(line);
    log_file << line << "\n";
    log_file.flush();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  void config_write() {
    if (writes()) file_write_atomic(path("config.json"), train_config_to_json(cfg).dump(2) + "\n");
  }
};

// The prior of the ordered level decoding (level_chain.h) from the training split's annotated
// level centres; it travels in model.json. Deterministic given the split, so a resumed run
// fits the same prior.
void level_prior_learn(Run& r) {
  std::vector<std::vector<Point2>> centres;
  for (const DatasetEntry& e : r.train) {
    std::vector<Point2> pts = e.annotation.points;
    for (size_t k = 0; k < pts.size(); ++k)
      if (k < e.annotation.visible.size() && !e.annotation.visible[k]) pts[k] = {NAN, NAN};
    centres.push_back(vertebra_centres(r.spec.schema, pts));
  }
  try {
    r.spec.level_prior = level_prior_fit(centres);
    r.log("level prior: fitted on " + std::to_string(r.spec.level_prior.films) + " training films");
  } catch (const Error& e) {
    r.log(std::string("level prior: none (") + e.what() + "); levels are decoded one by one");
  }
}

// Leaves out annotations flagged with one of the config's exclude_flags, and says how many.
std::vector<DatasetEntry> entries_filter(Run& r, std::vector<DatasetEntry> in) {
  if (r.cfg.exclude_flags.empty()) return in;
  std::vector<DatasetEntry> out;
  for (auto& e : in) {
    bool drop = false;
    const nlohmann::json& f = e.annotation.extra.contains("flags") ? e.annotation.extra["flags"] : nlohmann::json::array();
    for (const auto& flag : f)
      for (const auto& x : r.cfg.exclude_flags)
        drop = drop || (flag.is_string() && flag.get<std::string>().rfind(x, 0) == 0);
    if (!drop) out.push_back(std::move(e));
  }
  r.log("data: " + std::to_string(in.size() - out.size()) + " of " + std::to_string(in.size()) +
        " annotations left out by exclude_flags");
  return out;
}

// Train/validation split fixed by the seed: a permutation from the "split" stream; the last
// val_fraction of it (at least one image) is the validation split.
// On --resume: the run's recorded split.json, not a new split of a folder that may have changed
// since (a new split would move validation films into training). Films added since are left
// out, films recorded but gone are named; both are said in the log.
void split_reuse(Run& r, std::vector<DatasetEntry> listed) {
  const std::string file = r.path("split.json");
  nlohmann::json split;
  try {
    split = nlohmann::json::parse(file_read_all(file));
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(file << ": not valid JSON (" << e.what() << "); the run's split cannot be reused");
  }
  SM_CHECK(split.is_object() && split.value("train", nlohmann::json()).is_array() && split.value("val", nlohmann::json()).is_array(),
           file << ": must hold the arrays 'train' and 'val'");
  std::map<std::string, DatasetEntry*> by_source;
  for (auto& e : listed) by_source[e.source] = &e;
  std::vector<std::string> missing;
  std::set<std::string> recorded;
  for (const char* part : {"train", "val"})
    for (const auto& s : split[part]) {
      SM_CHECK(s.is_string(), file << ": '" << part << "' holds an entry that is not a string");
      const std::string source = s.get<std::string>();
      recorded.insert(source);
      const auto it = by_source.find(source);
      if (it == by_source.end()) missing.push_back(source);
      else (std::string(part) == "train" ? r.train : r.val).push_back(*it->second);
    }
  std::vector<std::string> added;
  for (const auto& e : listed)
    if (!recorded.count(e.source)) added.push_back(e.source);
  auto names = [](const std::vector<std::string>& v) {
    std::string t;
    for (size_t k = 0; k < v.size() && k < 5; ++k) t += (k ? ", " : "") + fs::path(v[k]).filename().string();
    return t + (v.size() > 5 ? ", ..." : "");
  };
  r.log("data: resuming with the run's recorded split (split.json), not a new one");
  if (!added.empty())
    r.log("data: " + std::to_string(added.size()) + " film(s) added to the data since the run started are left out: " + names(added));
  if (!missing.empty())
    r.log("data: " + std::to_string(missing.size()) + " film(s) of the recorded split are missing now (the resumed run is no " +
          "longer the same work): " + names(missing));
  SM_CHECK(!r.train.empty() && !r.val.empty(), file << ": the recorded split has " << r.train.size() << " training and "
                                                    << r.val.size() << " validation films left in the data; cannot resume");
}

void data_split(Run& r) {
  DatasetOptions dopt;
  dopt.schema = r.spec.schema.name;
  dopt.on_skipped = [&r](const std::string& source, const std::string& reason) { r.log("data: skipped " + source + ": " + reason); };
  std::vector<DatasetEntry> all = entries_filter(r, dataset_list(r.cfg.train_data, dopt));
  if (r.opt.resume && fs::exists(r.dir / "split.json")) {
    if (!r.cfg.val_data.empty())
      for (auto& e : entries_filter(r, dataset_list(r.cfg.val_data, dopt))) all.push_back(std::move(e));
    split_reuse(r, std::move(all));
    r.log("data: " + std::to_string(r.train.size()) + " training and " + std::to_string(r.val.size()) + " validation images");
    return;
  }
  if (!r.cfg.val_data.empty()) {
    r.train = std::move(all);
    r.val = entries_filter(r, dataset_list(r.cfg.val_data, dopt));
  } else {
    SM_CHECK(all.size() >= 2, r.cfg.train_data << ": " << all.size() << " image(s) cannot be split into train and validation");
    std::vector<size_t> order(all.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    Rng rng = Rng(r.cfg.seed).derive("split");
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    const size_t nval = std::max<size_t>(1, size_t(std::lround(r.cfg.val_fraction * double(all.size()))));
    for (size_t k = 0; k < order.size(); ++k) (k + nval < order.size() ? r.train : r.val).push_back(all[order[k]]);
  }
  SM_CHECK(!r.train.empty(), r.cfg.train_data << ": no training images left after holding out " << r.val.size()
                                              << " for validation (lower data.val_fraction or add images)");
  nlohmann::json split{{"train", nlohmann::json::array()}, {"val", nlohmann::json::array()}};
  for (const auto& e : r.train) split["train"].push_back(e.source);
  for (const auto& e : r.val) split["val"].push_back(e.source);
  if (r.writes()) file_write_atomic(r.path("split.json"), split.dump(1) + "\n");
  r.log("data: " + std::to_string(r.train.size()) + " training and " + std::to_string(r.val.size()) + " validation images");
}

// Refuses data that cannot train or validate, before any training (otherwise a run trains to
// "success" on NaN, or fails minutes later with a message about something else): training films
// with no landmark at all, landmarks far outside their film (another image's or another scale's
// coordinates), a validation split with no landmarks.
void data_check(Run& r) {
  auto landmarks = [](const DatasetEntry& e) {
    int n = 0;
    const Annotation& a = e.annotation;
    for (size_t k = 0; k < a.points.size(); ++k)
      n += (k >= a.visible.size() || a.visible[k]) && std::isfinite(a.points[k][0]) && std::isfinite(a.points[k][1]);
    return n;
  };
  int train_n = 0, val_n = 0;
  for (const auto& e : r.train) train_n += landmarks(e);
  for (const auto& e : r.val) val_n += landmarks(e);
  SM_CHECK(train_n > 0, "the training data has no landmarks: every landmark of the " << r.train.size()
                            << " training films is missing or hidden (" << r.cfg.train_data << "); nothing to train on");
  SM_CHECK(val_n > 0, "the validation split has no landmarks: every landmark of its " << r.val.size()
                          << " films is missing or hidden, so no validation error (and no best weights) can be measured");
  // A landmark more than half a film beyond the film's edge is not a corner of that film.
  std::vector<std::string> far;
  std::string example;
  for (const auto* part : {&r.train, &r.val})
    for (const auto& e : *part) {
      const ImageInfo info = image_info(e.image_path, ImageCheck::header);
      const double w = info.width, h = info.height;
      const Annotation& a = e.annotation;
      for (size_t k = 0; k < a.points.size(); ++k) {
        const double x = a.points[k][0], y = a.points[k][1];
        if (!std::isfinite(x) || !std::isfinite(y) || (k < a.visible.size() && !a.visible[k])) continue;
        if (x >= -0.5 * w && x <= 1.5 * w && y >= -0.5 * h && y <= 1.5 * h) continue;
        if (far.empty())
          example = e.source + ": " + r.spec.schema.landmarks[k] + " at (" + std::to_string(x) + ", " + std::to_string(y) +
                    ") in a " + std::to_string(info.width) + "x" + std::to_string(info.height) + " film";
        far.push_back(e.source);
        break;
      }
    }
  SM_CHECK(far.empty(), far.size() << " film(s) have landmarks far outside the film (more than half its size beyond the edge), e.g. "
                                   << example << "; are the coordinates for another image or in another scale?");
}

// Step-1 validation: the network on the letterboxed validation films (no augmentation), error
// in ORIGINAL image pixels (input pixels divided by each film's letterbox scale).
struct Step1Validation {
  static constexpr int kBatch = 16;
  std::vector<Tensor> batches;    // (≤ 16, 1, H, W) each, in film order, on the CPU
  std::vector<float> targets;     // (N, K, 2) normalised
  std::vector<float> mask;        // (N, K)
  std::vector<double> scale;      // (N) letterbox scale
  int n = 0, k = 0, w = 0, h = 0;
  // The batches on a GPU, uploaded at the first validation there and kept for the others.
  mutable std::vector<Tensor> batches_device;

  const std::vector<Tensor>& batches_on(Device device) const {
    if (device == Device::CPU) return batches;
    if (batches_device.empty() || batches_device.front().device() != device) {
      batches_device.clear();
      for (const Tensor& b : batches) batches_device.push_back(b.to(device));
    }
    return batches_device;
  }

  double error(DsntNet& net) const {
    NoGradGuard ng;
    net.inference_freeze();  // BN folded, weights prepared once for all batches (train() drops it)
    double sum = 0;
    int count = 0;
    const std::vector<Tensor>& in = batches_on(net.device());
    for (size_t bi = 0; bi < in.size(); ++bi) {
      const int first = int(bi) * kBatch, m = int(in[bi].size(0));
      const Tensor c = net.forward_all(Var(in[bi])).coords.value().to(Device::CPU);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < k; ++j) {
          const size_t at = size_t(first + i) * k + j;
          if (mask[at] == 0) continue;
          const double dx = (c.f32()[2 * (size_t(i) * k + j)] - targets[2 * at]) * w / 2;
          const double dy = (c.f32()[2 * (size_t(i) * k + j) + 1] - targets[2 * at + 1]) * h / 2;
          sum += std::hypot(dx, dy) / scale[size_t(first + i)];
          ++count;
        }
    }
    net.train();
    return count ? sum / count : NAN;
  }
};

Step1Validation step1_validation_make(const Run& r, const std::vector<DatasetEntry>& val, const NetSpec& net, bool centres) {
  SpineSampleConfig sc;
  sc.input_width = net.input_width, sc.input_height = net.input_height;
  sc.augment = false;
  sc.vertebra_centres = centres;
  const SampleFn make = spine_sample_fn(val, r.spec.schema, sc);
  Step1Validation v;
  v.n = int(val.size()), v.k = int(net.net.landmarks), v.w = net.input_width, v.h = net.input_height;
  const size_t plane = size_t(v.w) * size_t(v.h);
  for (int i = 0; i < v.n; ++i) {
    if (i % Step1Validation::kBatch == 0)
      v.batches.push_back(Tensor::empty({std::min(Step1Validation::kBatch, v.n - i), 1, v.h, v.w}));
    Sample s = make(0, uint64_t(i));
    std::copy(s.image.begin(), s.image.end(), v.batches.back().f32() + size_t(i % Step1Validation::kBatch) * plane);
    v.targets.insert(v.targets.end(), s.targets.begin(), s.targets.end());
    v.mask.insert(v.mask.end(), s.visible.begin(), s.visible.end());
    const ImageInfo info = image_info(val[size_t(i)].image_path, ImageCheck::header);
    v.scale.push_back(letterbox_fit(info.width, info.height, v.w, v.h).scale);
  }
  return v;
}

std::vector<DatasetEntry> val_subset(const Run& r) {
  std::vector<DatasetEntry> v = r.val;
  if (v.size() > size_t(r.cfg.val_images_max)) v.resize(size_t(r.cfg.val_images_max));
  return v;
}

StageOptions& stage_options(TrainConfig& c, const std::string& s) { return s == "detect" ? c.detect : s == "coarse" ? c.coarse : c.refine; }
std::shared_ptr<DsntNet> stage_net(SpineModel& m, const std::string& s) { return s == "detect" ? m.detect : s == "coarse" ? m.coarse : m.refine; }

// Trains one stage (planning its steps from the budget first when needed); returns its result
// and leaves the best weights in the model.
StageResult stage_run(Run& r, const std::string& name, const LoaderConfig& lc, const SampleFn& make, const StageHooks& hooks) {
  StageOptions& o = stage_options(r.cfg, name);
  o.device = r.device;
  const fs::path sdir = r.dir / name;
  int resume = r.opt.resume && !stage_checkpoint_latest(sdir.string()).empty();
  if (r.opt.comm) r.opt.comm->broadcast(&resume, sizeof resume);  // rank 0 decides for every rank
  if (o.steps == 0) {
    o.steps = stage_steps_plan(o, stage_net(r.model, name)->config(), lc, make, hooks);
    if (r.opt.comm) r.opt.comm->broadcast(&o.steps, sizeof o.steps);  // rank 0's plan: the same steps everywhere
    r.config_write();  // the planned count is part of the run from now on
  }
  r.log(name + ": training " + std::to_string(o.steps) + " steps, batch " + std::to_string(o.batch) + ", " + o.optimizer +
        " lr " + std::to_string(o.lr) + (resume ? " (resuming)" : ""));
  StageResult res = stage_train(o, *stage_net(r.model, name), lc, make, sdir.string(), resume != 0, hooks);
  char line[200];
  std::snprintf(line, sizeof line, "%s: %s after %lld steps in %.1f min; best validation error %.3f px at step %lld", name.c_str(),
                res.completed ? "done" : ("stopped (" + res.stop_reason + ")").c_str(), (long long)res.steps_done,
                res.seconds / 60, res.best_val, (long long)res.best_step);
  r.log(line);
  if (r.writes() && (res.completed || res.stop_reason == "time budget"))
    file_write_atomic((sdir / "done.json").string(), nlohmann::json{{"steps", res.steps_done}, {"best_val_error_px", res.best_val},
                                                                    {"best_step", res.best_step}, {"seconds", res.seconds},
                                                                    {"stop_reason", res.stop_reason}}.dump(2) + "\n");
  return res;
}

StageResult step1_stage_run(Run& r, const std::string& name) {
  const bool centres = name == "detect";
  const NetSpec& net = centres ? r.spec.detect : r.spec.coarse;
  SpineSampleConfig sc;
  sc.input_width = net.input_width, sc.input_height = net.input_height;
  sc.augment_options = r.cfg.augment;
  sc.seed = Rng(r.cfg.seed).derive("augment." + name).next_u64();
  sc.vertebra_centres = centres;
  const SampleFn make = spine_sample_fn(r.train, r.spec.schema, sc);
  // Decode and letterbox every training film once, on all threads, before the step time is
  // measured: otherwise the plan counts first-epoch decoding as training time.
  const Stopwatch decode_time;
  parallel_for(int64_t(r.train.size()), [&](int64_t i) { (void)make(0, uint64_t(i)); });
  r.log(name + ": " + std::to_string(r.train.size()) + " films decoded and letterboxed in " +
        std::to_string(decode_time.seconds()) + " s");
  LoaderConfig lc = spine_loader_config(sc, r.spec.schema, r.train.size(), stage_options(r.cfg, name).batch);
  lc.seed = Rng(r.cfg.seed).derive("shuffle." + name).next_u64();
  const Step1Validation val = step1_validation_make(r, val_subset(r), net, centres);
  StageHooks hooks;
  hooks.validate = [&val](DsntNet& n) { return val.error(n); };
  hooks.log = [&r](const std::string& s) { r.log(s); };
  hooks.comm = r.opt.comm;
  return stage_run(r, name, lc, make, hooks);
}

// Step-1 crop errors on the validation split: what the refinement network will face.
std::vector<CropError> jitter_measure(Run& r, const Pipeline& p, std::vector<PipelineResult>& step1,
                                      const std::shared_ptr<FilmCache>& films) {
  std::vector<CropError> errs;
  const Schema& s = r.spec.schema;
  for (size_t f = 0; f < films->size(); ++f) {
    step1.push_back(p.run_step1(*films->get(f)));
    const Annotation& a = films->entry(f).annotation;
    std::vector<Point2> gt = a.points;  // hidden corners are not ground truth
    for (size_t k = 0; k < gt.size(); ++k)
      if (k < a.visible.size() && !a.visible[k]) gt[k] = {NAN, NAN};
    for (int v = 0; v < s.vertebra_count(); ++v) {
      if (step1.back().crops[size_t(v)].size <= 0 || !vertebra_frame(s, gt, v).valid) continue;
      const CropParams truth = crop_params_from_vertebra(s, gt, v, r.spec.refine.input_width, r.spec.crop_margin);
      errs.push_back(crop_error(truth, step1.back().crops[size_t(v)]));
    }
  }
  std::vector<double> c, ang, sc;
  for (const auto& e : errs) c.push_back(std::hypot(e.dx, e.dy)), ang.push_back(std::fabs(e.angle) * 180 / M_PI), sc.push_back(std::fabs(e.log_scale));
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v.empty() ? NAN : v[v.size() / 2]; };
  char line[200];
  std::snprintf(line, sizeof line, "step-1 crop errors on %zu vertebrae: median centre %.3f of the side, angle %.2f deg, |log scale| %.3f",
                errs.size(), med(c), med(ang), med(sc));
  r.log(line);
  return errs;
}

StageResult refine_stage_run(Run& r) {
  for (const char* s : {"detect", "coarse"})
    SM_CHECK(fs::exists(r.dir / s / "best.safetensors"),
             "refine: the " << s << " network of this run is not trained yet (run --stage " << s << " first)");
  const Pipeline step1_pipeline = Pipeline::from_model(r.model, r.device);
  auto val_films = std::make_shared<FilmCache>(val_subset(r));
  std::vector<PipelineResult> val_step1;
  RefineJitter jitter = r.cfg.jitter;
  jitter.measured = jitter_measure(r, step1_pipeline, val_step1, val_films);
  if (r.writes()) file_write_atomic(r.path("jitter.json"), refine_jitter_to_json(jitter).dump() + "\n");
  RefineSampleConfig rc;
  rc.intensity = r.cfg.refine_intensity;
  rc.jitter = jitter;
  rc.seed = Rng(r.cfg.seed).derive("augment.refine").next_u64();
  auto train_films = std::make_shared<FilmCache>(r.train);
  parallel_for(int64_t(r.train.size()), [&](int64_t f) { (void)train_films->get(size_t(f)); });  // decoded once, up front
  RefineSamples samples(train_films, r.spec, rc);
  LoaderConfig lc = samples.loader_config(r.cfg.refine.batch);
  lc.seed = Rng(r.cfg.seed).derive("shuffle.refine").next_u64();
  StageHooks hooks;
  // Validated INSIDE the pipeline on the step-1 outputs (method.md §5), not on ground-truth crops.
  hooks.validate = [&](DsntNet& net) {
    // On the device the network trains on (stage_predictor_from_net must not move it: the
    // optimizer's parameter buffer holds views of its weights where they are).
    auto refine = stage_predictor_from_net(std::shared_ptr<DsntNet>(&net, [](DsntNet*) {}), net.device());
    ModelSpec spec = r.spec;
    spec.refine_variants = 1;  // validation compares checkpoints: one crop per vertebra is enough
    const Pipeline p(spec, [](const Tensor&, const StageQuery&) { return StageOutput{}; },
                     [](const Tensor&, const StageQuery&) { return StageOutput{}; }, refine);
    double sum = 0;
    int count = 0;
    for (size_t f = 0; f < val_films->size(); ++f) {
      PipelineResult res = val_step1[f];
      p.run_step2(*val_films->get(f), res);
      const Annotation& a = val_films->entry(f).annotation;
      for (size_t k = 0; k < a.points.size(); ++k)
        if (a.visible[k] && std::isfinite(a.points[k][0]))
          sum += std::hypot(res.landmarks[k][0] - a.points[k][0], res.landmarks[k][1] - a.points[k][1]), ++count;
    }
    net.train();
    return count ? sum / count : NAN;
  };
  hooks.log = [&r](const std::string& s) { r.log(s); };
  hooks.comm = r.opt.comm;
  return stage_run(r, "refine", lc, samples.sample_fn(), hooks);
}

void run_record(Run& r) {
  if (!r.writes()) return;
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  nlohmann::json j{{"git_revision", build::git_revision}, {"version", build::version}, {"build_type", build::build_type},
                   {"compiler", build::compiler}, {"threads", omp_get_max_threads()}, {"command", r.opt.command_line},
                   {"started", when}, {"resume", r.opt.resume}, {"stage", r.opt.stage},
                   {"cpu_kernels", cpu_kernels_in_use()}, {"ranks", r.opt.comm ? r.opt.comm->size() : 1},
                   {"device", r.cfg.device}};
  if (r.device == Device::CUDA)
    j["gpu"] = {{"name", device_backend().describe()}, {"deterministic", r.cfg.gpu_deterministic}, {"tf32", r.cfg.gpu_tf32}};
  std::ofstream(r.path("run.json"), std::ios::app) << j.dump() << "\n";
}

// A new run must not silently delete an earlier (finished or interrupted) run's stages.
void run_folder_check(const Run& r) {
  if (r.opt.resume || r.opt.overwrite || !r.writes()) return;  // rank 0 checks before it writes
  std::string held;
  if (fs::exists(r.dir / "config.json")) held = "config.json";
  for (const char* s : {"detect", "coarse", "refine"}) {
    const fs::path sdir = r.dir / s;
    if (!held.empty() || !fs::is_directory(sdir)) continue;
    for (const auto& f : fs::directory_iterator(sdir)) {
      const std::string n = f.path().filename().string();
      if (n == "checkpoint.json" || n == "done.json" || n == "best.safetensors" || n.rfind("ckpt-", 0) == 0) held = std::string(s) + "/" + n;
    }
  }
  SM_CHECK(held.empty(), r.opt.out << ": already holds a training run (" << held << "); continue it with --resume, or start "
                                   << "afresh with --overwrite (deletes that run's checkpoints and trained stages)");
}

// Temporaries (*.tmp.<pid>) that a killed process left in the run and stage folders.
void stale_temporaries_remove(Run& r) {
  if (!r.writes()) return;
  for (const fs::path& d : {r.dir, r.dir / "detect", r.dir / "coarse", r.dir / "refine"})
    for (const std::string& n : file_tmp_stale_remove(d.string()))
      r.log("removed " + (d / n).string() + " (a temporary left by a killed process)");
}

// The CPU kernel family: the config may pin one; a resume warns when it runs on another family
// than the run started with (float rounding differs between families: no bit-identical resume).
void kernels_select(Run& r) {
  CpuKernels k = CpuKernels::Auto;
  SM_CHECK(cpu_kernels_from_name(r.cfg.cpu_kernels, k), "cpu_kernels '" << r.cfg.cpu_kernels << "' is not a kernel family");
  if (k != CpuKernels::Auto) cpu_kernels_default_set(k);
  if (!r.opt.resume || !fs::exists(r.dir / "run.json")) return;
  std::ifstream in(r.path("run.json"));
  std::string line, recorded;
  while (recorded.empty() && std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("cpu_kernels") && j["cpu_kernels"].is_string()) recorded = j["cpu_kernels"].get<std::string>();
  }
  if (!recorded.empty() && recorded != cpu_kernels_in_use())
    r.log(std::string("warning: this run started on the ") + recorded + " CPU kernels and resumes on " + cpu_kernels_in_use() +
          ": float rounding differs between kernel families, so the result will not be bit-identical to an uninterrupted run "
          "(pin one with \"cpu_kernels\" in the run config, or SPINEMARK_CPU_KERNELS=" + recorded + ")");
}

// The run's device from its config: "cuda" needs a CUDA build and a GPU (a clear error otherwise,
// before any training); sets the GPU math modes; one GPU per rank of a data-parallel run (the
// rank's index on its node, modulo the GPUs it sees).
Device device_use(const TrainConfig& c, Communicator* comm) {
  // "cpu" leaves the backend as it is (device_select would force CUDA off for the whole process,
  // which a program that trains on the CPU and then on the GPU, like the GPU tests, must not get).
  if (c.device == "cpu") return Device::CPU;
  const Device d = device_select(c.device, "train");
  DeviceBackend& b = device_backend();
  if (comm && comm->size() > 1) b.device_index_set(communicator_local_rank(*comm) % b.device_count());
  b.deterministic_mode_set(c.gpu_deterministic);
  b.strict_mode_set(!c.gpu_tf32);
  return d;
}

// --minutes: the budget of the stages being trained, shared in proportion to their own budgets.
void budget_split(TrainConfig& c, double minutes, const std::string& stage) {
  std::vector<StageOptions*> st;
  for (StageOptions* s : {&c.detect, &c.coarse, &c.refine})
    if (stage == "all" || stage == s->name) st.push_back(s);
  double sum = 0;
  for (StageOptions* s : st) sum += s->minutes;
  SM_CHECK(sum > 0, "--minutes: the stages have no time budgets to scale");
  for (StageOptions* s : st) s->minutes *= minutes / sum, s->steps = 0;
}

}  // namespace

TrainRunResult train_run(TrainConfig config, const TrainRunOptions& opt) {
  SM_CHECK(opt.stage == "all" || opt.stage == "detect" || opt.stage == "coarse" || opt.stage == "refine",
           "--stage '" << opt.stage << "' is not detect, coarse, refine or all");
  Run r;
  // A new run's device is checked before anything is written (a resumed one's once its config is read).
  if (!opt.resume) {
    if (!opt.device.empty()) config.device = opt.device;
    r.device = device_use(config, opt.comm);
  }
  r.opt = opt;
  r.dir = fs::path(opt.out);
  std::error_code ec;
  if (r.writes()) fs::create_directories(r.dir, ec);
  SM_CHECK(!ec, opt.out << ": cannot create the run folder: " << ec.message());
  run_folder_check(r);
  // The other ranks go on once rank 0 has checked and made the folder (an error there ends them
  // all); from here on they only read it: config.json, split.json and run.json on --resume (rank
  // 0 rewrites them atomically), checkpoints and best weights of finished stages.
  if (opt.comm) opt.comm->barrier();
  std::string device_before;  // the device the run was recorded with, on --resume
  if (opt.resume) {
    SM_CHECK(fs::exists(r.dir / "config.json"), opt.out << ": nothing to resume (no config.json in the run folder)");
    config = train_config_read(r.path("config.json"));
    device_before = config.device;
    if (!opt.device.empty()) config.device = opt.device;
    r.device = device_use(config, opt.comm);
  } else if (opt.minutes > 0) {
    budget_split(config, opt.minutes, opt.stage);
  }
  r.cfg = config;
  // Data paths are stored absolute, so the run folder's config.json works from anywhere.
  for (std::string* p : {&r.cfg.train_data, &r.cfg.val_data})
    if (!p->empty()) *p = fs::absolute(*p).lexically_normal().string();
  if (r.writes()) r.log_file.open(r.path("log.txt"), std::ios::app);
  if (opt.resume && opt.minutes > 0) r.log("--minutes is ignored with --resume: the run keeps its planned steps");
  if (opt.resume && device_before != r.cfg.device)
    r.log("device: the run was on " + device_before + " and continues on " + r.cfg.device +
          " (the checkpoint carries the weights and the optimizer state; float rounding differs between devices)");
  if (opt.resume && !opt.ignored_on_resume.empty()) {
    std::string names;
    for (const auto& n : opt.ignored_on_resume) names += (names.empty() ? "" : " and ") + n;
    r.log(names + " ignored with --resume: the run's recorded config.json wins (" + std::to_string(r.cfg.threads) + " threads)");
  }
  stale_temporaries_remove(r);
  omp_set_num_threads(r.cfg.threads);
  kernels_select(r);
  run_record(r);
  const Schema schema = schema_load(r.cfg.schema);
  schema_register(schema);
  r.spec = model_spec_preset(schema, r.cfg.preset);
  model_spec_override(r.spec, r.cfg.model, r.path("config.json") + ": model");
  r.spec.provenance = {{"git_revision", build::git_revision}, {"build_type", build::build_type}, {"run", fs::absolute(r.dir).string()},
                       {"seed", r.cfg.seed}};
  r.config_write();
  r.log("run " + opt.out + ": schema " + schema.name + ", preset " + r.cfg.preset + ", seed " + std::to_string(r.cfg.seed) +
        ", " + std::to_string(r.cfg.threads) + " threads" +
        (opt.comm && opt.comm->size() > 1 ? " on each of " + std::to_string(opt.comm->size()) + " MPI ranks" : "") + ", CPU kernels " + cpu_kernels_in_use() + ", revision " + build::git_revision);
  if (r.device == Device::CUDA)
    r.log("device: cuda, " + device_backend().describe() + (r.cfg.gpu_deterministic ? ", deterministic" : ", measured (non-deterministic)") +
          " cuDNN algorithms, " + (device_backend().tf32_active() ? "TF32 allowed" : "full float32"));
  data_split(r);
  data_check(r);
  level_prior_learn(r);
  r.model = spine_model_create(r.spec, r.cfg.seed);
  TrainRunResult out;
  out.completed = true;
  for (const std::string s : {"detect", "coarse", "refine"}) {
    const fs::path best = r.dir / s / "best.safetensors";
    const bool wanted = opt.stage == "all" || opt.stage == s;
    const bool done = fs::exists(r.dir / s / "done.json");
    if (!wanted || (opt.resume && done)) {
      if (fs::exists(best)) weights_load(best.string(), *stage_net(r.model, s));
      if (wanted) r.log(s + ": already done in this run");
      continue;
    }
    StageResult res = s == "refine" ? refine_stage_run(r) : step1_stage_run(r, s);
    out.stages[s] = res;
    if (!res.completed && res.stop_reason != "time budget") {
      out.completed = false;
      out.stop_reason = res.stop_reason;
      r.log("run stopped (" + res.stop_reason + "); continue with: spinemark train --resume --out " + opt.out);
      return out;
    }
  }
  out.model_dir = r.path("model");
  if (!r.writes()) return out;  // rank 0 writes the model folder and evaluates it
  spine_model_save(out.model_dir, r.model);
  r.log("model: " + out.model_dir);
  if (opt.evaluate && opt.stage == "all") {
    const Pipeline p = Pipeline::from_model(r.model, r.device);
    EvalResult ev = eval_run(p, r.val);
    eval_write(r.path("eval-val"), ev, "validation split of " + opt.out);
    r.log("validation report: " + r.path("eval-val/report.html"));
  }
  return out;
}

}  // namespace sm
