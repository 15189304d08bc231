// `spinemark dsnt-demo`: trains a small DSNT network on generated blob images, prints progress
// and the held-out localisation error, and writes PNG snapshots of heatmaps and points.
#include <cstdio>
#include <omp.h>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "tensor/device_backend.h"
#include "train/run/dsnt_demo.h"

namespace {

struct DemoArgs {
  sm::BlobDemoConfig cfg;
  int threads = 0;  // 0 (not given): OpenMP's default
  std::string device = "cpu";
};

void demo_run(DemoArgs a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  a.cfg.device = sm::device_select(a.device, "dsnt-demo");
  const sm::BlobDemoConfig& c = a.cfg;
  std::printf("+---------------- spinemark dsnt-demo ----------------+\n");
  std::printf("| seed %-6llu image %dx%d  width %-3d batch %-3d        |\n", (unsigned long long)c.seed, c.image_size, c.image_size, c.width, c.batch);
  std::printf("| steps %-5d Adam lr %-8.2g cosine, warm-up %-4d     |\n", c.steps, c.lr, c.warmup_steps);
  std::printf("| loss: Euclidean + %.2g * JS(sigma %.2g px)             |\n", c.js_lambda, c.sigma);
  std::printf("| threads %-3d  out %-33s |\n", omp_get_max_threads(), c.out_dir.empty() ? "(no pictures)" : c.out_dir.c_str());
  std::printf("| device %-44s |\n", sm::device_name(c.device));
  std::printf("+-----------------------------------------------------+\n");
  const int every = std::max(1, c.steps / 20);
  sm::BlobDemoResult r = sm::blob_demo_run(c, [&](const sm::BlobDemoProgress& p) {
    if (p.step == 1 || p.step % every == 0 || p.step == p.steps)
      std::printf("step %5d/%d  loss %.4f  err %.2f px  grad-norm %.3f  lr %.2e  %.1f ms  %.0f img/s\n", p.step, p.steps,
                  p.loss, p.train_error_px, p.grad_norm, p.lr, p.ms, p.samples_per_s);
    std::fflush(stdout);
  });
  std::printf("held-out localisation error over %d images: mean %.3f px, median %.3f px, p90 %.3f px, max %.3f px\n",
              r.test_images, r.mean_error_px, r.median_error_px, r.p90_error_px, r.max_error_px);
  for (const auto& p : r.pictures) std::printf("wrote %s\n", p.c_str());
  std::printf("total %.1f s\n", r.seconds);
}

void demo_setup(CLI::App& root) {
  auto args = std::make_shared<DemoArgs>();
  args->cfg.out_dir = "dsnt-demo";
  CLI::App* sub = root.add_subcommand("dsnt-demo", "Train a small DSNT network on generated blob images and report the held-out error");
  using sm::app::seed_check;
  using sm::app::threads_range;
  sub->add_option("--seed", args->cfg.seed, "Master seed")->capture_default_str()->check(seed_check());
  sub->add_option("--steps", args->cfg.steps, "Training steps")->capture_default_str()->check(CLI::Range(1, 10000000));
  sub->add_option("--batch", args->cfg.batch, "Images per step")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_option("--size", args->cfg.image_size, "Image (and heatmap) side in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  sub->add_option("--width", args->cfg.width, "Channels of the conv layers")->capture_default_str()->check(CLI::Range(1, 1024));
  sub->add_option("--lr", args->cfg.lr, "Peak learning rate (Adam)")->capture_default_str()->check(CLI::Range(0.0, 10.0));
  sub->add_option("--js", args->cfg.js_lambda, "Weight of the Jensen-Shannon regulariser")->capture_default_str()->check(CLI::Range(0.0, 1000.0));
  sub->add_option("--test-images", args->cfg.test_images, "Held-out images")->capture_default_str()->check(CLI::Range(1, 1000000));
  sub->add_option("--out", args->cfg.out_dir, "Folder for PNG snapshots ('' for none)")->capture_default_str();
  sub->add_option("--threads", args->threads, "CPU threads (default: OpenMP's)")->check(threads_range());
  sub->add_option("--device", args->device, "cpu, or cuda (needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  sub->callback([args] { demo_run(*args); });
}

}  // namespace

SM_REGISTER_COMMAND(dsnt_demo, 10, demo_setup);
