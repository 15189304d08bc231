// `spinemark demo [--out DIR] [--minutes M]`: the main job (train/run/demo.h): synthetic data,
// the three networks trained on the CPU within the budget, the held-out evaluation and report.
#include <cstdio>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "train/run/demo.h"
#include "train/run/stop_signal.h"

namespace sm::app {

namespace {

void demo_main(DemoOptions o) {
  o.log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  stop_signals_install();
  const DemoResult r = demo_run(o);
  if (!r.completed) {
    std::fprintf(stderr, "demo: stopped before the end; continue with: spinemark demo --resume --out %s\n", o.out.c_str());
    command_set_exit_code(130);
    return;
  }
  std::printf("\n%s", eval_headline(r.eval).c_str());
  std::printf("total time: %.1f min\nmodel:  %s\nreport: %s\n", r.seconds / 60, r.model_dir.c_str(), r.report.c_str());
}

void demo_setup(CLI::App& root) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* cmd = root.add_subcommand("demo", "The main job: synthetic films -> train the 2-step model -> held-out report");
  cmd->add_option("--out", o->out, "output folder (data, run, report)")->capture_default_str();
  cmd->add_option("--minutes", o->minutes, "time budget for everything")->check(CLI::Range(1.5, 10000.0))->capture_default_str();
  cmd->add_option("--train-images", o->train_images, "training films")->check(CLI::Range(16, 1000000))->capture_default_str();
  cmd->add_option("--val-images", o->val_images, "validation films")->check(CLI::Range(2, 100000))->capture_default_str();
  cmd->add_option("--test-images", o->test_images, "held-out test films")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--seed", o->seed, "master seed (data and training)")->check(seed_check() & CLI::Range(0ull, 1ull << 62))->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads")->check(threads_range())->capture_default_str();
  cmd->add_flag("--resume", o->resume, "reuse the generated data and continue an interrupted run");
  cmd->callback([o]() { demo_main(*o); });
}

}  // namespace

SM_REGISTER_COMMAND(demo, 5, demo_setup);

}  // namespace sm::app
