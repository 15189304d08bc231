// `spinemark bench`: the cases of the PyTorch peer benchmark run by our engine
// (train/bench/bench_run.h), printing one JSON object per line with the peer's keys, so that the
// two can be compared side by side (bench/compare.py alternates them in one run;
// docs/performance.md). `--device cuda` runs the same cases on the GPU.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/command.h"
#include "apps/omp_wait_policy.h"
#include "train/bench/bench_run.h"

namespace {

using namespace sm;

void bench_main(BenchOptions options) {
  options.omp_wait_policy = sm::app::omp_wait_policy_in_effect();
  bench_run(options, [](const nlohmann::json& record) {
    std::printf("%s\n", record.dump().c_str());
    std::fflush(stdout);
  });
}

void bench_setup(CLI::App& root) {
  auto a = std::make_shared<BenchOptions>();
  CLI::App* sub = root.add_subcommand("bench", "Run the peer benchmark's cases (JSON lines with peer_torch.py's keys)");
  sub->add_option("--model", a->model,
                  "all, convs, coarse, refine, detect, or pipeline (the 2-step inference per image on a "
                  "2000x1000 16-bit film, small preset, with a time per stage; --infer-reps timed runs)")
      ->check(CLI::IsMember({"all", "convs", "coarse", "refine", "detect", "pipeline"}))
      ->capture_default_str();
  sub->add_option("--device", a->device, "cpu, or cuda (needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  // Checked at parse time: a timed count of 0 would take the median of nothing (issue 11, item 1).
  sub->add_option("--threads", a->threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--steps", a->steps, "Timed training steps (after --warmup)")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_option("--warmup", a->warmup, "Untimed repetitions first")->capture_default_str()->check(CLI::Range(0, 100000));
  sub->add_option("--infer-reps", a->infer_reps, "Timed batch-1 inferences")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_flag("--unfrozen", a->unfrozen,
                "Time inference without the inference snapshot (BN folded into the convs, weights prepared once), "
                "as the layers run in training");
  sub->add_flag("--deterministic", a->deterministic,
                "GPU: cuDNN's fixed deterministic algorithms, as train --device cuda uses by default, instead of measured "
                "ones (what peer_torch.py does); the cost of bit-identical GPU runs");
  sub->add_option("--conv-reps", a->conv_reps, "Timed repetitions per conv layer")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->callback([a] { bench_main(*a); });
}

}  // namespace

SM_REGISTER_COMMAND(bench, 50, bench_setup);
