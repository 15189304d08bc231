// `spinemark eval --model DIR --data DIR|manifest.jsonl --out DIR`: runs the 2-step pipeline on an
// annotated dataset and writes metrics.json, per-image predictions and report.html (train/eval/).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <omp.h>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "apps/progress_print.h"
#include "models/nets/spine_model.h"
#include "models/pipeline/pipeline.h"
#include "tensor/check.h"
#include "tensor/device_backend.h"
#include "tensor/file_io.h"
#include "train/data/dataset.h"
#include "train/eval/eval.h"
#include "train/eval/svg_plots.h"

namespace sm::app {

namespace {

struct EvalConfig {
  std::string model, data, out, title;
  std::string device = "cpu";
  int threads = 0;  // 0 (not given): OpenMP's default
};

// The last component of a path, "models/a/" included.
std::string path_name(const std::string& path) {
  std::filesystem::path p(path);
  return p.has_filename() ? p.filename().string() : p.parent_path().filename().string();
}

void headline_print(const EvalResult& r, const std::string& out) {
  const MetricsReport &a = r.step1, &b = r.final;
  std::printf("images %zu, %.1f ms per image\n", r.images.size(), 1000.0 * r.seconds_per_image);
  std::printf("%-34s %12s %12s\n", "", "step 1", "step 1 + 2");
  auto row = [](const std::string& name, double x, double y) {
    std::printf("%-34s %12s %12s\n", name.c_str(), number_format(x, 2).c_str(), number_format(y, 2).c_str());
  };
  row("median relative error x (%)", a.overall.rel_x.median, b.overall.rel_x.median);
  row("median relative error y (%)", a.overall.rel_y.median, b.overall.rel_y.median);
  row("median error (px)", a.overall.px.median, b.overall.px.median);
  row("mean error (px)", a.overall.px.mean, b.overall.px.mean);
  for (size_t k = 0; k < r.schema.angles.size() && k < b.per_angle.size(); ++k)
    row("median |error| " + r.schema.angles[k] + " (deg)", a.per_angle[k].median_abs, b.per_angle[k].median_abs);
  if (b.smape_percent) row("SMAPE (%)", a.smape_percent.value_or(NAN), *b.smape_percent);
  const GrossMissStats& g = r.gross;
  std::printf("gross misses %d of %d landmarks in %d images; flagged %d of them", g.misses, g.landmarks,
              g.images_with_miss, g.misses_flagged);
  if (g.misses) std::printf(" (catch rate %.1f %%)", 100.0 * g.misses_flagged / g.misses);
  std::printf("; %d flags on good landmarks\n", g.good_flagged);
  std::printf("report: %s\n", (std::filesystem::path(out) / "report.html").string().c_str());
  std::fflush(stdout);
}

void eval_main(const EvalConfig& cfg) {
  if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
  const Device device = device_select(cfg.device, "eval");
  const SpineModel model = spine_model_load(cfg.model);
  const Schema& schema = model.spec.schema;
  // A user schema travels inside model.json; annotations name it, so make the name resolvable.
  const auto builtin = schema_builtin_names();
  if (std::find(builtin.begin(), builtin.end(), schema.name) == builtin.end()) schema_register(schema);
  eval_out_check(cfg.out, cfg.data);
  for (const std::string& n : file_tmp_stale_remove(cfg.out))
    std::fprintf(stderr, "eval: removed %s (a temporary left by a killed process)\n", n.c_str());
  std::vector<EvalSkip> listing_skips;  // entries the listing could not read: named, not fatal
  DatasetOptions opt;
  opt.schema = schema.name;
  opt.on_bad_entry = [&listing_skips](const std::string& source, const std::string& why) {
    const bool named = why.compare(0, source.size() + 2, source + ": ") == 0;  // the message often starts with the source
    listing_skips.push_back({source, named ? why.substr(source.size() + 2) : why});
  };
  const std::vector<DatasetEntry> entries = dataset_list(cfg.data, opt);
  const Pipeline pipeline = Pipeline::from_model(model, device);
  std::fprintf(stderr, "eval: %zu images, schema %s, device %s, %d threads\n", entries.size(), schema.name.c_str(),
               cfg.device.c_str(), omp_get_max_threads());
  ProgressPrinter printer;
  EvalResult result = eval_run(pipeline, entries, [&printer](int done, int total) { printer.update(done, total); });
  result.skipped.insert(result.skipped.begin(), listing_skips.begin(), listing_skips.end());
  for (const EvalSkip& k : result.skipped) std::fprintf(stderr, "eval: skipped %s: %s\n", k.source.c_str(), k.reason.c_str());
  SM_CHECK(!result.images.empty(), "no film of " << cfg.data << " could be evaluated (" << result.skipped.size() << " skipped, above)");
  const std::string title =
      cfg.title.empty() ? "spinemark eval: " + path_name(cfg.model) + " on " + path_name(cfg.data) : cfg.title;
  eval_write(cfg.out, result, title);
  headline_print(result, cfg.out);
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
