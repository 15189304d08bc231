// The main job (see demo.h).
#include "train/run/demo.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <omp.h>
#include <sstream>

#include "models/pipeline/pipeline.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "tensor/parallel_for.h"
#include "tensor/stopwatch.h"
#include "train/run/recipes.h"
#include "train/run/train_run.h"
#include "train/synth/synth.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

// Images first..first+count−1 of the generator into dir as <prefix>_NNNNNN (names unique across
// splits; the generator index makes every film distinct). Existing pairs are kept (resume).
void split_generate(const std::string& dir, const std::string& prefix, uint64_t seed, int first, int count, int size) {
  const Schema& schema = schema_builtin("lumbar-lateral");
  std::error_code ec;
  fs::create_directories(dir, ec);
  SM_CHECK(!ec, dir << ": cannot create the folder: " << ec.message());
  SynthOptions so;
  so.size = size;
  // A write error (a full disk) is rethrown here as the usual one-line error.
  parallel_for(count, [&](int64_t i) {
    char stem[64];
    std::snprintf(stem, sizeof stem, "%s_%06d", prefix.c_str(), first + int(i));
    if (file_exists(dir + "/" + stem + ".json") && file_exists(dir + "/" + stem + ".png")) return;
    synth_write(dir, stem, synth_generate(schema, seed, uint64_t(first + i), so), schema, 16);
  }, 4);
}

std::string f2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// The small preset's recipe (train/run/recipes.h) on the generated data, with the demo's seed and
// threads.
nlohmann::json demo_config(const DemoOptions& o, const std::string& data) {
  nlohmann::json j = recipe_lumbar_synthetic_small();
  j.merge_patch({{"data", {{"train", data + "/train"}, {"val", data + "/val"}}}, {"seed", o.seed}, {"threads", o.threads}});
  return j;
}

}  // namespace

DemoResult demo_run(const DemoOptions& o) {
  SM_CHECK(o.minutes > 1, "demo: --minutes must be more than 1");
  SM_CHECK(o.train_images >= 16 && o.val_images >= 2 && o.test_images >= 1, "demo: too few images");
  const Stopwatch time;
  auto log = [&](const std::string& s) { if (o.log) o.log(s); };
  omp_set_num_threads(o.threads);
  const std::string data = fs::absolute(fs::path(o.out) / "data").lexically_normal().string();
  log("demo: generating " + std::to_string(o.train_images) + " + " + std::to_string(o.val_images) + " + " +
      std::to_string(o.test_images) + " synthetic lateral lumbar films (" + std::to_string(o.image_size) + " px) in " + data);
  split_generate(data + "/train", "train", o.seed, 0, o.train_images, o.image_size);
  split_generate(data + "/val", "val", o.seed, o.train_images, o.val_images, o.image_size);
  split_generate(data + "/test", "test", o.seed, o.train_images + o.val_images, o.test_images, o.image_size);
  const double gen_s = time.seconds();
  log("demo: data ready in " + f2(gen_s) + " s");
  // What is left of the budget, less the evaluations (about 0.07 s per film), decoding the films
  // for each stage (about 0.01 s per film and stage), planning, the step-1 error measurement and
  // a margin.
  const double eval_s = 0.07 * (o.val_images + o.test_images) + 0.01 * 3 * o.train_images + 45;
  const double train_min = (o.minutes * 60 - gen_s - eval_s) / 60;
  SM_CHECK(train_min > 0.5, "demo: a budget of " << o.minutes << " min leaves no time to train");
  const TrainConfig cfg = train_config_from_json(demo_config(o, data), "demo config");
  TrainRunOptions ro;
  ro.out = (fs::path(o.out) / "run").string();
  ro.resume = o.resume && fs::exists(fs::path(ro.out) / "config.json");
  ro.minutes = ro.resume ? 0 : train_min;
  ro.overwrite = !ro.resume;  // the demo folder is the demo's own: a rerun without --resume starts afresh, as before
  ro.command_line = "spinemark demo";
  ro.log = o.log;
  const TrainRunResult tr = train_run(cfg, ro);
  DemoResult res;
  if (!tr.completed) {
    res.seconds = time.seconds();
    return res;
  }
  res.model_dir = tr.model_dir;
  const SpineModel model = spine_model_load(tr.model_dir);
  const Pipeline pipeline = Pipeline::from_model(model, Device::CPU);
  DatasetOptions dopt;
  dopt.schema = "lumbar-lateral";
  log("demo: evaluating on " + std::to_string(o.test_images) + " held-out test films");
  res.eval = eval_run(pipeline, dataset_list(data + "/test", dopt));
  const std::string report_dir = (fs::path(o.out) / "report").string();
  eval_write(report_dir, res.eval, "spinemark demo: held-out synthetic lateral lumbar films");
  res.report = report_dir + "/report.html";
  res.seconds = time.seconds();
  res.completed = true;
  return res;
}

}  // namespace sm
