// Training runs end to end on a tiny synthetic set: every stage trains, the model folder is
// written, an interrupted run resumed with --resume ends with weights BIT-IDENTICAL to an
// uninterrupted run (CPU, same thread count), and NaN in the loss stops with a clear message
// while the last good checkpoint stays loadable.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "layers/parameter_buffer.h"
#include "layers/weights.h"
#include "tensor/device_backend.h"
#include "tensor/ops.h"
#include "tensor/file_io.h"
#include "test_support.h"
#include "training_fixture.h"
#include "train/eval/eval.h"
#include "train/optim/optimizer.h"
#include "train/run/checkpoint.h"
#include "train/run/recipes.h"
#include "train/run/stage_trainer.h"
#include "train/run/stop_signal.h"
#include "train/run/train_run.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

using test::config_tiny;
using test::synth_folder;

TrainRunResult run(const TrainConfig& c, const std::string& out, bool resume) {
  TrainRunOptions o;
  o.out = out;
  o.resume = resume;
  o.evaluate = false;
  return train_run(c, o);
}

// The stage-level cases' network: two stages of 4 and 8 channels, 2 landmarks; their loader: 4
// samples of one 32 × 32 channel in batches of 2.
DsntNetConfig stage_test_net() {
  DsntNetConfig nc;
  nc.backbone.depth = 0;
  nc.backbone.blocks = {1, 1};
  nc.backbone.widths = {4, 8};
  nc.backbone.output_stride = 8;
  nc.landmarks = 2;
  return nc;
}
LoaderConfig stage_test_loader() {
  LoaderConfig lc;
  lc.size = 4, lc.batch = 2, lc.channels = 1, lc.height = lc.width = 32, lc.landmarks = 2, lc.seed = 1;
  return lc;
}
// Their samples: noise images with two fixed visible targets; NaN pixels from epoch `nan_from` on.
SampleFn stage_test_samples(uint64_t nan_from) {
  return [nan_from](uint64_t epoch, uint64_t index) {
    Sample s;
    Rng r = Rng(7).derive("x", index);
    for (int k = 0; k < 32 * 32; ++k) s.image.push_back(epoch >= nan_from ? NAN : float(r.normal()));
    s.targets = {0.1f, -0.2f, -0.3f, 0.4f};
    s.visible = {1, 1};
    return s;
  };
}

std::string weights_bytes(const std::string& model, const std::string& stage) {
  return file_read_all((fs::path(model) / (stage + ".safetensors")).string());
}

}  // namespace

TEST_CASE("train: three stages end to end; an interrupted and resumed run is bit-identical") {
  test::TempDir dir("training_resume");
  const TrainConfig cfg = config_tiny(synth_folder(dir));
  const TrainRunResult full = run(cfg, dir.file("full"), false);
  REQUIRE(full.completed);
  for (const char* f : {"config.json", "run.json", "log.txt", "split.json", "jitter.json", "detect/metrics.jsonl", "detect/curves.png",
                        "refine/best.safetensors", "model/model.json", "model/refine.safetensors"})
    CHECK_MESSAGE(fs::exists(fs::path(dir.file("full")) / f), f);

  // The trained model runs through the pipeline and the evaluation on the validation films.
  const SpineModel model = spine_model_load(full.model_dir);
  CHECK(model.spec.refine.input_width == 32);
  DatasetOptions dopt;
  dopt.schema = "lumbar-lateral";
  const EvalResult ev = eval_run(Pipeline::from_model(model, Device::CPU), dataset_list(cfg.train_data, dopt));
  CHECK(ev.images.size() == 8);
  CHECK(ev.final.overall.px.count == 8 * 22);
  CHECK(std::isfinite(ev.final.overall.px.median));
  eval_write(dir.file("eval"), ev, "tiny");
  CHECK(fs::exists(fs::path(dir.file("eval")) / "report.html"));
  CHECK(fs::exists(fs::path(dir.file("eval")) / "predictions" / "f0.json"));

  // Interrupted inside detect at step 2 (before its first validation, at step 3), then inside
  // refine at step 3 (a validation step).
  for (const char* stage : {"detect", "refine"}) {
    CAPTURE(stage);
    TrainConfig c = cfg;
    if (std::string(stage) == "detect") c.detect.stop_after_steps = 2;
    else c.refine.stop_after_steps = 3;
    const std::string out = dir.file(std::string("cut_") + stage);
    const TrainRunResult cut = run(c, out, false);
    CHECK_FALSE(cut.completed);
    CHECK(cut.stop_reason == "stop_after_steps");
    CHECK_FALSE(fs::exists(fs::path(out) / "model"));
    const TrainRunResult resumed = run(TrainConfig{}, out, true);  // the run folder's config.json is used
    REQUIRE(resumed.completed);
    for (const char* s : {"detect", "coarse", "refine"})
      CHECK_MESSAGE(weights_bytes(resumed.model_dir, s) == weights_bytes(full.model_dir, s), s);
  }
}

TEST_CASE("train: NaN in the loss stops with a clear message; the last good checkpoint stays") {
  test::TempDir dir("training_nan");
  Rng rng(3);
  const DsntNetConfig nc = stage_test_net();
  DsntNet net(nc, rng);
  const LoaderConfig lc = stage_test_loader();
  // Good samples in epoch 0 (steps 1-2), NaN pixels from epoch 1 on (step 3).
  const SampleFn make = stage_test_samples(1);
  StageOptions o;
  o.name = "nan";
  o.steps = 4, o.batch = 2, o.validations = 2, o.warmup_steps = 0;
  StageHooks hooks;
  hooks.validate = [](DsntNet&) { return 1.0; };
  const std::string sdir = dir.file("stage");
  try {
    stage_train(o, net, lc, make, sdir, false, hooks);
    FAIL("NaN input should stop the run");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("the loss became") != std::string::npos);
    CHECK(std::string(e.what()).find("step 3") != std::string::npos);
  }
  // The checkpoint of step 2 (the first validation) is intact and loads.
  Rng rng2(4);
  DsntNet again(nc, rng2);
  ParameterBuffer params(again);
  Adam adam(params, AdamConfig{});
  const std::string latest = stage_checkpoint_latest(sdir);
  REQUIRE_FALSE(latest.empty());
  const TrainState st = checkpoint_load(latest, again, adam);
  CHECK(st.step == 2);
}

TEST_CASE("train: a checkpoint pointer naming a file outside its stage folder is refused") {
  test::TempDir dir("training_pointer");
  const std::string sdir = dir.file("stage");
  std::filesystem::create_directories(sdir);
  for (const char* prefix : {"../elsewhere/ckpt-000000002", "/tmp/ckpt-000000002", "ckpt-2/../../x", "best"}) {
    file_write_atomic(sdir + "/checkpoint.json", nlohmann::json{{"prefix", prefix}, {"step", 2}}.dump());
    CAPTURE(prefix);
    CHECK_THROWS_WITH_AS(stage_checkpoint_latest(sdir), doctest::Contains("must name a checkpoint of this folder"), Error);
  }
  file_write_atomic(sdir + "/checkpoint.json", nlohmann::json{{"prefix", "ckpt-000000002"}, {"step", 2}}.dump());
  CHECK(stage_checkpoint_latest(sdir) == (std::filesystem::path(sdir) / "ckpt-000000002").string());
}

TEST_CASE("train: run configs reject unknown keys and out-of-range values, naming them") {
  auto fails = [](const char* json, const char* needle) {
    try {
      train_config_from_json(nlohmann::json::parse(json), "cfg.json");
      FAIL("should fail: " << json);
    } catch (const Error& e) {
      CAPTURE(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  fails(R"({"data": {"train": "x"}, "stagez": {}})", "unknown key 'stagez'");
  fails(R"({"data": {"train": "x"}, "stages": {"detect": {"lr": -1}}})", "stages.detect.lr");
  fails(R"({"data": {"train": "x"}, "stages": {"refine": {"batchsize": 3}}})", "unknown key 'batchsize'");
  fails(R"({"data": {"train": "x"}, "threads": 1000})", "threads 1000");
  fails(R"({"data": {"train": "x"}, "augment": {"rotate_deg": "a lot"}})", "cfg.json: augment: 'rotate_deg' must be a number");
  fails(R"({"seed": 1})", "data");
  fails(R"({"data": {"train": "x"}, "stages": {"refin": {}}})", "unknown stage 'refin'");
  fails(R"({"data": {"train": "x"}, "stages": {"detect": {"jitter": {}}}})", "unknown key 'jitter'");
  // Type errors name the key; a negative seed is refused instead of wrapping to 2^64 - 1.
  fails(R"({"data": {"train": "x"}, "seed": -1})", "cfg.json: 'seed' must not be negative");
  fails(R"({"data": {"train": "x"}, "seed": "1"})", "cfg.json: 'seed' must be a whole number");
  fails(R"({"data": {"train": "x"}, "threads": 2.5})", "cfg.json: 'threads' must be a whole number");
  fails(R"({"data": {"train": 3}})", "cfg.json: data: 'train' must be a string");
  fails(R"({"data": {"train": "x", "exclude_flags": ["a", 1]}})", "'exclude_flags'[1] must be a string");
  fails(R"({"data": {"train": "x", "val_fraction": "half"}})", "'val_fraction' must be a number");
  fails(R"({"data": {"train": "x"}, "jitter": {"widen": "x"}})", "cfg.json: jitter: refinement jitter: 'widen' must be a number");
  // Found by tests/fuzz/fuzz_run_config (tests/fuzz/crashes/run_config/): a preset that is not a string
  // escaped as a JSON library exception instead of an sm::Error naming the file; a huge number
  // for a whole-number option was converted to int out of range (undefined behaviour).
  fails(R"({"data": {"train": "x"}, "preset": {"detect": {}}})", "cfg.json: 'preset' must be a string");
  fails(R"({"data": {"train": "x"}, "stages": {"coarse": {"batch": 4.4e65}}})", "cfg.json: stages.coarse: 'batch' must be a whole number");
  // Every option goes through one typed reader (tensor/json_field.h): a wrong type names the key.
  fails(R"({"data": {"train": "x"}, "stages": {"detect": {"lr": "fast"}}})", "cfg.json: stages.detect: 'lr' must be a number");
  fails(R"({"data": {"train": "x"}, "stages": {"refine": {"optimizer": 1}}})", "cfg.json: stages.refine: 'optimizer' must be a string");
  fails(R"({"data": {"train": "x"}, "stages": [1, 2]})", "cfg.json: stages: must be a JSON object");
  fails(R"({"data": {"train": "x"}, "augment": {"geometric": 1}})", "cfg.json: augment: 'geometric' must be true or false");
  fails(R"({"data": {"train": "x"}, "jitter": 3})", "cfg.json: jitter: refinement jitter: must be a JSON object");
  fails(R"({"data": {"train": "x"}, "jitter": {"widden": 2}})", "cfg.json: jitter: refinement jitter: unknown key 'widden'");
  // The device and the GPU math modes (docs/training.md, "Training on a GPU").
  fails(R"({"data": {"train": "x"}, "device": "gpu"})", "cfg.json: device 'gpu' is not cpu or cuda");
  fails(R"({"data": {"train": "x"}, "gpu": {"tf33": true}})", "cfg.json: gpu: unknown key 'tf33'");
  fails(R"({"data": {"train": "x"}, "gpu": {"deterministic": 1}})", "cfg.json: gpu: 'deterministic' must be true or false");
  fails(R"({"data": {"train": "x"}, "gpu": true})", "cfg.json: gpu: must be a JSON object");
  // A step count without a budget trains exactly those steps (no wall-clock stop).
  const TrainConfig steps_only = train_config_from_json(nlohmann::json::parse(R"({"data": {"train": "x"}, "stages": {"detect": {"steps": 7}}})"), "c");
  CHECK(steps_only.detect.steps == 7);
  CHECK(steps_only.detect.minutes == 0);
}

TEST_CASE("train: the run's device is recorded, round-trips through config.json, and a missing GPU is refused before anything is written") {
  test::TempDir dir("training_device");
  TrainConfig cfg = config_tiny(synth_folder(dir));
  cfg.gpu_deterministic = false, cfg.gpu_tf32 = false;
  const TrainConfig back = train_config_from_json(train_config_to_json(cfg), "round trip");
  CHECK(back.device == "cpu");
  CHECK_FALSE(back.gpu_deterministic);
  CHECK_FALSE(back.gpu_tf32);
  // A run stopped on the CPU...
  cfg.detect.stop_after_steps = 2;
  const std::string out = dir.file("run");
  REQUIRE_FALSE(run(cfg, out, false).completed);
  const std::string ckpt = stage_checkpoint_latest((fs::path(out) / "detect").string());
  REQUIRE_FALSE(ckpt.empty());
  const nlohmann::json recorded = nlohmann::json::parse(file_read_all((fs::path(out) / "run.json").string()));
  CHECK(recorded["device"] == "cpu");
  CHECK(nlohmann::json::parse(file_read_all((fs::path(out) / "config.json").string()))["device"] == "cpu");
  if (!cuda_available()) {
    // ... asked to continue on a GPU this machine lacks: a clear error, and the run is untouched.
    const std::string log_before = file_read_all((fs::path(out) / "log.txt").string());
    TrainRunOptions o;
    o.out = out, o.resume = true, o.evaluate = false, o.device = "cuda";
    try {
      train_run(TrainConfig{}, o);
      FAIL("train --device cuda without a usable GPU should fail");
    } catch (const Error& e) {
      CAPTURE(e.what());
      CHECK(std::string(e.what()).find("train --device cuda") != std::string::npos);
    }
    CHECK(file_read_all((fs::path(out) / "log.txt").string()) == log_before);
    CHECK(stage_checkpoint_latest((fs::path(out) / "detect").string()) == ckpt);
    // A new run on the missing GPU writes nothing at all.
    TrainConfig gpu = config_tiny(cfg.train_data);
    gpu.device = "cuda";
    CHECK_THROWS_WITH_AS(run(gpu, dir.file("gpu_run"), false), doctest::Contains("train --device cuda"), Error);
    CHECK_FALSE(fs::exists(dir.file("gpu_run")));
  } else {
    MESSAGE("a GPU is present: the refusals of a missing GPU are not checked here (test_cuda trains on it)");
  }
  // The paper preset's GPU recipe reads, and names the networks of the paper preset.
  const TrainConfig paper = train_config_read(std::string(SPINEMARK_SOURCE_DIR) + "/configs/aasce_ap_paper_gpu.json");
  CHECK(paper.device == "cuda");
  CHECK(paper.preset == "paper");
  CHECK(paper.gpu_deterministic);
  ModelSpec spec = model_spec_preset(schema_builtin(paper.schema), paper.preset);
  model_spec_override(spec, paper.model, "paper recipe");
  CHECK(spec.detect.input_width == 512);
  CHECK(spec.detect.input_height == 1024);
  CHECK(spec.detect.net.backbone.widths.back() == 512);
  // The stopped run continues on the CPU, as `--resume --device cpu` says, to the end.
  TrainRunOptions o;
  o.out = out, o.resume = true, o.evaluate = false, o.device = "cpu";
  CHECK(train_run(TrainConfig{}, o).completed);
}

TEST_CASE("train: stage_train leaves the network on the device it came on, with its best weights") {
  test::TempDir dir("training_stage_device");
  Rng rng(3);
  const DsntNetConfig nc = stage_test_net();
  DsntNet net(nc, rng);
  const LoaderConfig lc = stage_test_loader();
  const SampleFn make = stage_test_samples(UINT64_MAX);
  StageOptions o;
  o.name = "device";
  o.steps = 4, o.batch = 2, o.validations = 2, o.warmup_steps = 0;
  o.device = Device::CPU;
  StageHooks hooks;
  int validations = 0;
  hooks.validate = [&validations](DsntNet& n) {
    CHECK(n.device() == Device::CPU);  // validation sees the network where it trains
    return 1.0 / ++validations;        // each validation better: the best is the last
  };
  const StageResult res = stage_train(o, net, lc, make, dir.file("stage"), false, hooks);
  CHECK(res.completed);
  CHECK(res.best_step == 4);
  CHECK(net.device() == Device::CPU);
  // The weights in the network are the best file's (bit for bit).
  Rng rng2(9);
  DsntNet best(nc, rng2);
  weights_load(dir.file("stage") + "/best.safetensors", best);
  const auto a = net.state_dict(), b = best.state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) CHECK_MESSAGE(tensor_max_abs_diff(a[k].second.value(), b[k].second.value()) == 0, a[k].first);
}

TEST_CASE("train: configs/lumbar_synthetic_small.json is the demo's recipe (train/run/recipes.h)") {
  // The file adds only a comment and its data paths; every other value must be the recipe's.
  nlohmann::json file = nlohmann::json::parse(file_read_all(std::string(SPINEMARK_SOURCE_DIR) + "/configs/lumbar_synthetic_small.json"));
  file.erase("comment");
  file["data"].erase("train");
  file["data"].erase("val");
  const nlohmann::json recipe = recipe_lumbar_synthetic_small();
  CHECK_MESSAGE(file == recipe, "differences (file -> recipe): " << nlohmann::json::diff(file, recipe).dump());
  // And the recipe is a valid run config once it has its data.
  nlohmann::json with_data = recipe;
  with_data["data"]["train"] = "x";
  CHECK(train_config_from_json(with_data, "recipe").refine.batch == 32);
}
