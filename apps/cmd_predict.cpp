// `spinemark predict`: the 2-step pipeline (method.md §5) on a list of images, through
// predict_run (models/pipeline/predict_run.h). Per image OUT/<name>.json and OUT/<name>.png, and
// one row of OUT/summary.csv. A bad image is reported and skipped; the others still run, and the
// exit code is 1. Entries of --data that are not inputs are listed with the reason.
#include <cstdio>
#include <map>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "apps/progress_print.h"
#include "models/pipeline/predict_inputs.h"
#include "models/pipeline/predict_run.h"
#include "tensor/check.h"

namespace sm::app {

namespace {

// The entries of --data that are not inputs: per reason, how many and the first few paths.
void skipped_print(const std::vector<PredictSkipped>& skipped) {
  std::map<std::string, std::vector<std::string>> by_reason;
  for (const auto& s : skipped) by_reason[s.reason].push_back(s.path);
  for (const auto& [reason, paths] : by_reason) {
    std::fprintf(stderr, "spinemark predict: skipped %zu %s: %s\n", paths.size(), paths.size() == 1 ? "entry" : "entries",
                 reason.c_str());
    for (size_t i = 0; i < paths.size() && i < 5; ++i) std::fprintf(stderr, "  %s\n", paths[i].c_str());
    if (paths.size() > 5) std::fprintf(stderr, "  ... and %zu more\n", paths.size() - 5);
  }
}

void predict_main(const PredictOptions& options) {
  ProgressPrinter printer;
  const PredictRunResult r = predict_run(options, [&printer](const PredictProgress& p) {
    if (!p.note.empty()) std::fprintf(stderr, "spinemark predict: %s\n", p.note.c_str());
    if (!p.error.empty())
      std::fprintf(stderr, "spinemark predict: %s\n", predict_error_text(p.image, p.error).c_str());
    printer.update(p.done, p.total, p.predicted, p.seconds);
  });
  const std::string resumed = r.resumed > 0 ? ", " + std::to_string(r.resumed) + " resumed" : "";
  std::fprintf(stderr, "predicted %d images (%d errors%s) in %.1f s, %.2f img/s\n", r.predicted, r.errors,
               resumed.c_str(), r.seconds, r.seconds > 0 ? r.predicted / r.seconds : 0.0);
  skipped_print(r.skipped);
  if (r.errors > 0) command_set_exit_code(1);
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
  auto cfg = std::make_shared<PredictOptions>();
  CLI::App* sub = root.add_subcommand("predict", "Corners, angles and quality flags of each image with a trained model");
  sub->add_option("--model", cfg->model, "model folder (model.json + detect/coarse/refine.safetensors)")->required();
  auto* images = sub->add_option("--image", cfg->images, "image file(s): PNG, JPEG, BMP, PGM or DICOM");
  auto* data = sub->add_option("--data", cfg->data,
                               "folder: every image file in it and its sub-folders, sorted by path; outputs mirror "
                               "the sub-folders");
  auto* manifest = sub->add_option("--manifest", cfg->manifest,
                                   "text file: one image path per line, or JSON lines with \"image\" "
                                   "(relative to the manifest's folder)");
  images->excludes(data)->excludes(manifest);
  data->excludes(manifest);
  sub->add_option("--out", cfg->out, "output folder: <name>.json, <name>.png, summary.csv; never "
                  "writes over a file it did not write; locked while a run writes")->required();
  sub->add_option("--device", cfg->device, "cpu, or cuda (needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->add_option("--shard", cfg->shard,
                  "K/N: only inputs i (0-based, sorted by path) with i mod N = K-1; writes summary-K-of-N.csv. "
                  "auto: K and N from a Slurm job array; auto/N: K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX "
                  "(Kubernetes Indexed Job)")
      ->check(CLI::Validator(shard_validate, "K/N", "shard"));
  sub->add_flag("--resume", cfg->resume, "keep images whose <name>.json is a complete prediction of the same file (path, "
                "size, mtime) by the same model; predict the others");
  sub->add_option("--threads", cfg->threads, "CPU threads (default: OpenMP's)")->check(threads_range());
  sub->add_flag("--no-overlay", cfg->no_overlay, "do not write the <name>.png overlay pictures");
  sub->callback([cfg] { predict_main(*cfg); });
}

}  // namespace

SM_REGISTER_COMMAND(predict, 51, predict_setup);

}  // namespace sm::app
