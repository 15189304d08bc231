// Training on the GPU (`spinemark train --device cuda`, issue 21): the same tiny three-stage run
// as test_training on both devices. The first steps' losses agree with the CPU's (same initial
// weights, same batches: only float rounding differs; strict float32 so that TF32 does not hide
// a wrong gradient), two deterministic GPU runs give bit-identical weights (and so does one
// interrupted and resumed on the GPU), a run interrupted on one device resumes on the other, and
// the trained model predicts alike on both. Also the GPU
// ranks' pieces that one process can exercise: SyncBatchNorm's kernel path on the GPU and NCCL
// over one rank. Without a GPU every case is skipped with a message.
#include <doctest/doctest.h>

#ifndef SPINEMARK_CUDA

TEST_CASE("cuda train: GPU training tests") {
  MESSAGE("SKIPPED: this spinemark was built without CUDA; no GPU training test ran");
}

#else

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "layers/batchnorm2d.h"
#include "layers/batchnorm2d_sync.h"
#include "models/pipeline/pipeline.h"
#include "tensor/device_backend.h"
#include "tensor/file_io.h"
#include "tensor/ops.h"
#include "training_fixture.h"
#include "train/dist/nccl_sum.h"
#include "train/run/stage_trainer.h"
#include "train/run/train_run.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

bool gpu() { return cuda_available(); }

TrainConfig config_gpu_test(const std::string& data, const std::string& device) {
  TrainConfig c = test::config_tiny(data);
  for (StageOptions* s : {&c.detect, &c.coarse, &c.refine}) s->log_every = 1;  // one loss per step in metrics.jsonl
  c.device = device;
  c.gpu_deterministic = true;
  c.gpu_tf32 = false;  // full float32, comparable with the CPU
  return c;
}

TrainRunResult run(const TrainConfig& c, const std::string& out, bool resume, const std::string& device = "") {
  TrainRunOptions o;
  o.out = out, o.resume = resume, o.evaluate = false, o.device = device;
  return train_run(c, o);
}

// step -> loss of a stage's metrics.jsonl.
std::map<int64_t, double> losses(const std::string& run_dir, const std::string& stage) {
  std::map<int64_t, double> out;
  std::ifstream in((fs::path(run_dir) / stage / "metrics.jsonl").string());
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("type", "") == "step") out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

std::string weights_bytes(const std::string& model, const std::string& stage) {
  return file_read_all((fs::path(model) / (stage + ".safetensors")).string());
}

double relative(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-12); }

struct SoloReducer final : BatchStatsReducer {
  void sum(double*, int64_t) override {}
};

}  // namespace

TEST_CASE("cuda train: device") {
  if (!gpu()) MESSAGE("SKIPPED: " << device_backend().describe() << "; every GPU training case is skipped");
  else MESSAGE("training on " << device_backend().describe());
}

TEST_CASE("cuda train: host code reading a GPU tensor gets an error, not a crash" * doctest::skip(!gpu())) {
  Tensor t = Tensor::zeros({4}, DType::F32, Device::CUDA);
  CHECK_THROWS_WITH_AS(t.f32(), doctest::Contains("host access (data()) to a tensor on"), Error);
  CHECK(t.to(Device::CPU).f32()[0] == 0.0f);
}

TEST_CASE("cuda train: the first steps' losses match the CPU's; two deterministic GPU runs are bit-identical" *
          doctest::skip(!gpu())) {
  test::TempDir dir("cuda_train_parity");
  const std::string data = test::synth_folder(dir);
  REQUIRE(run(config_gpu_test(data, "cpu"), dir.file("cpu"), false).completed);
  const TrainRunResult a = run(config_gpu_test(data, "cuda"), dir.file("gpu_a"), false);
  const TrainRunResult b = run(config_gpu_test(data, "cuda"), dir.file("gpu_b"), false);
  REQUIRE(a.completed);
  REQUIRE(b.completed);
  const nlohmann::json recorded = nlohmann::json::parse(file_read_all(dir.file("gpu_a") + "/run.json"));
  CHECK(recorded["device"] == "cuda");
  CHECK(recorded.contains("gpu"));
  // Step 1 runs the same weights on the same batch: float rounding only. Steps 2-3 follow one
  // and two Adam updates, which move parameters with near-zero gradients by ±lr whatever the
  // rounding (docs/scaling.md), so they get a looser bound.
  for (const char* stage : {"detect", "coarse"}) {
    CAPTURE(stage);
    const auto cpu = losses(dir.file("cpu"), stage), gpu = losses(dir.file("gpu_a"), stage);
    REQUIRE(cpu.size() == 6);
    REQUIRE(gpu.size() == 6);
    MESSAGE(stage << " losses, step 1: cpu " << cpu.at(1) << ", gpu " << gpu.at(1) << "; step 3: cpu " << cpu.at(3) << ", gpu "
                  << gpu.at(3));
    CHECK(relative(gpu.at(1), cpu.at(1)) <= 1e-4);
    CHECK(relative(gpu.at(2), cpu.at(2)) <= 1e-2);
    CHECK(relative(gpu.at(3), cpu.at(3)) <= 1e-2);
  }
  for (const auto& [step, loss] : losses(dir.file("gpu_a"), "refine")) CHECK_MESSAGE(std::isfinite(loss), "refine step " << step);
  for (const char* s : {"detect", "coarse", "refine"}) CHECK_MESSAGE(weights_bytes(a.model_dir, s) == weights_bytes(b.model_dir, s), s);
  // Interrupted on the GPU inside refine and resumed on the GPU: bit-identical too.
  TrainConfig cut = config_gpu_test(data, "cuda");
  cut.refine.stop_after_steps = 3;
  REQUIRE_FALSE(run(cut, dir.file("gpu_cut"), false).completed);
  const TrainRunResult resumed = run(TrainConfig{}, dir.file("gpu_cut"), true);
  REQUIRE(resumed.completed);
  for (const char* s : {"detect", "coarse", "refine"}) CHECK_MESSAGE(weights_bytes(resumed.model_dir, s) == weights_bytes(a.model_dir, s), s);
}

TEST_CASE("cuda train: a run interrupted on the GPU resumes on the CPU, and the other way round; the model predicts on both" *
          doctest::skip(!gpu())) {
  test::TempDir dir("cuda_train_resume");
  const std::string data = test::synth_folder(dir);
  const TrainRunResult whole = run(config_gpu_test(data, "cuda"), dir.file("whole"), false);
  REQUIRE(whole.completed);
  // GPU -> CPU inside detect (after step 2), CPU -> GPU inside coarse (after step 3).
  TrainConfig c1 = config_gpu_test(data, "cuda");
  c1.detect.stop_after_steps = 2;
  REQUIRE_FALSE(run(c1, dir.file("to_cpu"), false).completed);
  const TrainRunResult r1 = run(TrainConfig{}, dir.file("to_cpu"), true, "cpu");
  REQUIRE(r1.completed);
  TrainConfig c2 = config_gpu_test(data, "cpu");
  c2.coarse.stop_after_steps = 3;
  REQUIRE_FALSE(run(c2, dir.file("to_gpu"), false).completed);
  const TrainRunResult r2 = run(TrainConfig{}, dir.file("to_gpu"), true, "cuda");
  REQUIRE(r2.completed);
  CHECK(file_read_all(dir.file("to_cpu") + "/log.txt").find("continues on cpu") != std::string::npos);
  // GPU -> CPU: the first step after the move starts from the GPU run's own checkpoint (weights
  // and optimizer state) on the same batch as the uninterrupted GPU run: equal up to the float
  // rounding of one step.
  const auto ref_detect = losses(dir.file("whole"), "detect"), moved_detect = losses(dir.file("to_cpu"), "detect");
  CHECK(relative(moved_detect.at(3), ref_detect.at(3)) <= 1e-3);
  // CPU -> GPU: three CPU steps came before the move, so the weights differ from the GPU run's
  // by three steps of rounding: the looser bound of steps 2-3 in the parity case.
  const auto ref_coarse = losses(dir.file("whole"), "coarse"), moved_coarse = losses(dir.file("to_gpu"), "coarse");
  CHECK(relative(moved_coarse.at(4), ref_coarse.at(4)) <= 1e-2);
  // A model trained across both devices predicts alike on both.
  const SpineModel m = spine_model_load(r1.model_dir);
  const Schema& s = schema_builtin("lumbar-lateral");
  const Image film = synth_generate(s, 21, 0, SynthOptions{192}).image;
  const PipelineResult on_cpu = Pipeline::from_model(m, Device::CPU).run(film);
  const SpineModel m2 = spine_model_load(r1.model_dir);
  const PipelineResult on_gpu = Pipeline::from_model(m2, Device::CUDA).run(film);
  REQUIRE(on_cpu.landmarks.size() == on_gpu.landmarks.size());
  double worst = 0;
  for (size_t k = 0; k < on_cpu.landmarks.size(); ++k)
    worst = std::max(worst, std::hypot(on_cpu.landmarks[k][0] - on_gpu.landmarks[k][0], on_cpu.landmarks[k][1] - on_gpu.landmarks[k][1]));
  MESSAGE("CPU vs GPU prediction of a model trained across devices: largest landmark difference " << worst << " px");
  CHECK(worst <= 0.5);
}

TEST_CASE("cuda train: SyncBatchNorm's kernel path on the GPU (one rank) equals the BatchNorm kernel on the CPU" *
          doctest::skip(!gpu())) {
  Rng rng(5);
  const int64_t n = 3, c = 4;
  Tensor xs = Tensor::empty({n, c, 6, 5}), seed = Tensor::empty({n, c, 6, 5}), ws = Tensor::empty({c}), bs = Tensor::empty({c});
  tensor_fill_uniform(xs, rng, -2, 3);
  tensor_fill_uniform(seed, rng, -1, 1);
  tensor_fill_uniform(ws, rng, 0.5, 1.5);
  tensor_fill_uniform(bs, rng, -0.5, 0.5);
  Var x(xs.clone(), true), w(ws.clone(), true), b(bs.clone(), true);
  Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.0);
  Var y = batchnorm2d(x, w, b, &rm, &rv, true);
  backward(y, seed);
  Var xg(xs.to(Device::CUDA), true), wg(ws.to(Device::CUDA), true), bg(bs.to(Device::CUDA), true);
  Tensor rmg = Tensor::zeros({c}, DType::F32, Device::CUDA), rvg = Tensor::full({c}, 1.0, DType::F32, Device::CUDA);
  SoloReducer solo;
  Var yg = batchnorm2d_sync_kernels(xg, wg, bg, &rmg, &rvg, {}, solo);
  backward(yg, seed.to(Device::CUDA));
  auto err = [](const Tensor& gpu_t, const Tensor& cpu_t) {
    const Tensor h = gpu_t.to(Device::CPU);
    return std::sqrt(tensor_sum_squares(tensor_sub(h, cpu_t)) / std::max(tensor_sum_squares(cpu_t), 1e-30));
  };
  CHECK(err(yg.value(), y.value()) <= 1e-5);
  CHECK(err(xg.grad(), x.grad()) <= 1e-4);
  CHECK(err(wg.grad(), w.grad()) <= 1e-5);
  CHECK(err(bg.grad(), b.grad()) <= 1e-5);
  CHECK(err(rmg, rm) <= 1e-5);
  CHECK(err(rvg, rv) <= 1e-5);
}

TEST_CASE("cuda train: NCCL over one rank (the GPU ranks' gradient sum)" * doctest::skip(!gpu())) {
  if (nccl_library().empty()) {
    MESSAGE("SKIPPED: this build has no NCCL; GPU ranks sum their gradients through the host");
    return;
  }
  std::unique_ptr<Communicator> solo = communicator_solo();
  NcclSum nccl(*solo);
  Rng rng(6);
  Tensor v = Tensor::empty({1000});
  tensor_fill_uniform(v, rng, -1, 1);
  Tensor d = v.to(Device::CUDA);
  nccl.sum(static_cast<float*>(d.raw_data()), d.numel(), device_backend().stream_handle());
  CHECK(tensor_max_abs_diff(d.to(Device::CPU), v) == 0);  // Σ over one rank: the values themselves
  MESSAGE(nccl_library() << ": the all-reduce over one rank ran");
}

#endif  // SPINEMARK_CUDA
