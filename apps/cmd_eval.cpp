// `spinemark eval --model DIR --data DIR|manifest.jsonl --out DIR`: runs the 2-step pipeline on an
// annotated dataset and writes metrics.json, per-image predictions and report.html
// (train/eval/eval.h: eval_folder_run).
#include <cstdio>
#include <filesystem>
#include <omp.h>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "apps/progress_print.h"
#include "tensor/device_backend.h"
#include "train/eval/eval.h"

namespace sm::app {

namespace {

struct EvalConfig {
  std::string model, data, out, title;
  std::string device = "cpu";
  int threads = 0;  // 0 (not given): OpenMP's default
};

void eval_main(const EvalConfig& cfg) {
  if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
  EvalOptions o;
  o.model = cfg.model, o.data = cfg.data, o.out = cfg.out, o.title = cfg.title;
  o.device = device_select(cfg.device, "eval");
  o.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  ProgressPrinter printer;
  const EvalResult result = eval_folder_run(o, [&printer](int done, int total) { printer.update(done, total); });
  std::printf("%s", eval_headline(result).c_str());
  std::printf("report: %s\n", (std::filesystem::path(cfg.out) / "report.html").string().c_str());
  std::fflush(stdout);
  if (!result.skipped.empty()) {  // the numbers cover the others only: say so in the exit status
    std::fprintf(stderr, "eval: %zu of %zu entries skipped (named in metrics.json and the report)\n", result.skipped.size(),
                 result.skipped.size() + result.images.size());
    command_set_exit_code(1);
  }
}

void eval_setup(CLI::App& root) {
  auto cfg = std::make_shared<EvalConfig>();
  CLI::App* cmd = root.add_subcommand("eval", "Run a model on an annotated dataset: metrics.json, predictions and report.html");
  cmd->add_option("--model", cfg->model, "model folder (model.json + detect/coarse/refine.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--data", cfg->data, "dataset folder (one JSON per image) or .jsonl manifest")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--out", cfg->out, "output folder (created)")->required();
  cmd->add_option("--device", cfg->device, "cpu, or cuda (needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--threads", cfg->threads, "CPU threads (default: OpenMP's)")->check(threads_range());
  cmd->add_option("--title", cfg->title, "heading of the report (default: model and data names)");
  cmd->callback([cfg]() { eval_main(*cfg); });
}

}  // namespace

SM_REGISTER_COMMAND(eval, 52, eval_setup);

}  // namespace sm::app
