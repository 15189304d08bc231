// `spinemark bench` as a library call: the cases of the PyTorch peer benchmark run by our engine,
// each result one JSON record with the peer's keys, so that the two can be compared side by side
// (bench/compare.py alternates them in one run; docs/performance.md).
// Cases: coarse/refine/detect networks (ResNet-18 backbone, output stride 16, DSNT head):
// infer_bs1, infer_bsN, train_step (forward + Euclidean + JS + backward + Adam); conv3x3 layers;
// and, on request only, the whole pipeline (pipeline_bench.h). On CUDA the network, inputs and
// targets live on the device, the clock is read after synchronising it, cuDNN algorithms are
// measured like torch's cudnn.benchmark and TF32 is allowed, as peer_torch.py --device cuda.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace sm {

struct BenchOptions {
  std::string model = "all";   // all, convs, coarse, refine, detect, or pipeline (not part of all)
  std::string device = "cpu";  // cpu or cuda
  int threads = 2, steps = 10, warmup = 3, infer_reps = 20, conv_reps = 10;
  bool unfrozen = false;       // inference through the training layers (BN passes, weights packed per call)
  // GPU: cuDNN's fixed deterministic algorithms (the training default, train --device cuda)
  // instead of measured ones (the peer's cudnn.benchmark): the cost of bit-identical runs.
  bool deterministic = false;
  std::string omp_wait_policy;  // what the caller runs under, copied into the network records
};

using BenchRecordCallback = std::function<void(const nlohmann::json& record)>;

// Sets the thread count and the device's math modes, then runs the cases of `options.model`,
// handing each record over as soon as it is measured ("bench": "env" first, for "all").
void bench_run(const BenchOptions& options, const BenchRecordCallback& on_record);

}  // namespace sm
