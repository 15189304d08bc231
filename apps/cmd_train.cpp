// `spinemark train --config FILE --out DIR [--stage detect|coarse|refine|all] [--resume | --overwrite]
// [--minutes M] [--threads N] [--seed S] [--device cpu|cuda]`: a training run of the 2-step method (train/run/train_run.h).
// Ctrl-C saves a checkpoint and exits; --resume continues bit-identically. Under an MPI launcher
// (`mpirun -np N spinemark train ...`) the N processes train one run data-parallel
// (docs/scaling.md); an error on any of them ends them all (MPI_Abort), never a hang.
#include <cstdio>
#include <omp.h>

#include "apps/command.h"
#include "apps/option_checks.h"
#include "train/dist/communicator.h"
#include "train/run/stop_signal.h"
#include "train/run/train_run.h"

namespace sm::app {

namespace {

struct TrainArgs {
  std::string config, out, stage = "all", device;  // device "": the config's
  bool resume = false, overwrite = false, no_eval = false;
  double minutes = 0;
  int threads = 0;
  int64_t seed = -1;  // -1: the config's
};

void train_main(const TrainArgs& a, const std::string& command_line) {
  TrainConfig cfg;
  if (!a.resume) {
    SM_CHECK(!a.config.empty(), "--config is required for a new run (with --resume the run folder's config.json is used)");
    cfg = train_config_read(a.config);
    if (a.threads > 0) cfg.threads = a.threads;
    if (a.seed >= 0) cfg.seed = uint64_t(a.seed);  // recorded in the run's config.json
  }
  TrainRunOptions o;
  o.out = a.out;
  o.stage = a.stage;
  o.resume = a.resume;
  o.overwrite = a.overwrite;
  SM_CHECK(!(a.resume && a.overwrite), "--resume continues the run in --out and --overwrite starts it afresh: give one of them");
  if (a.resume && !a.config.empty()) o.ignored_on_resume.push_back("--config");
  if (a.resume && a.threads > 0) o.ignored_on_resume.push_back("--threads");
  if (a.resume && a.seed >= 0) o.ignored_on_resume.push_back("--seed");
  o.device = a.device;
  o.minutes = a.minutes;
  o.evaluate = !a.no_eval;
  o.command_line = command_line;
  o.log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  const std::unique_ptr<Communicator> comm = communicator_from_environment();
  o.comm = comm.get();
  stop_signals_install();
  TrainRunResult r;
  try {
    r = train_run(cfg, o);
  } catch (const std::exception& e) {
    if (comm->size() == 1) throw;
    // The other ranks wait for this one in their next collective: end them all now.
    std::fprintf(stderr, "spinemark train: error on rank %d of %d: %s\n", comm->rank(), comm->size(), e.what());
    std::fflush(stderr);
    comm->abort(1);
  }
  if (comm->rank() != 0) {  // rank 0 reports; every rank exits with the same code
    if (!r.completed) command_set_exit_code(r.stop_reason == "interrupted" ? 130 : 3);
    return;
  }
  if (!r.completed) {
    std::fprintf(stderr, "train: stopped (%s); the checkpoint is saved: spinemark train --resume --out %s\n", r.stop_reason.c_str(),
                 a.out.c_str());
    command_set_exit_code(r.stop_reason == "interrupted" ? 130 : 3);
    return;
  }
  std::printf("model: %s\n", r.model_dir.c_str());
}

void train_setup(CLI::App& root) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = root.add_subcommand("train", "Train the three networks of the 2-step method from a run config (JSON)");
  cmd->add_option("--config", a->config, "run config (see configs/ and docs/training.md)")->check(CLI::ExistingFile);
  cmd->add_option("--out", a->out, "run folder (config, logs, checkpoints, model, report)")->required();
  cmd->add_option("--stage", a->stage, "which network(s) to train")->check(CLI::IsMember({"detect", "coarse", "refine", "all"}))->capture_default_str();
  cmd->add_flag("--resume", a->resume, "continue the run in --out from its last checkpoint");
  cmd->add_flag("--overwrite", a->overwrite, "start afresh in an --out that holds a run (deletes its checkpoints and stages)");
  cmd->add_option("--minutes", a->minutes, "overall time budget, split over the stages by their own budgets")->check(CLI::Range(0.0, 100000.0));
  cmd->add_option("--threads", a->threads, "CPU threads (default: the config's)")->check(threads_range());
  cmd->add_option("--seed", a->seed, "master seed of a new run (default: the config's); repeat a recipe with seeds 1 and 2 to measure it")
      ->check(CLI::Range(int64_t(0), int64_t(9007199254740991)));
  cmd->add_option("--device", a->device, "where the networks train: cpu or cuda (default: the config's \"device\", else cpu); "
                                       "with --resume it moves the run to that device")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--no-eval", a->no_eval, "skip the evaluation on the validation split at the end");
  cmd->callback([a, cmd]() {
    std::string line = "spinemark train";
    for (const auto& o : cmd->get_options())
      if (o->count() > 0 && o->get_name() != "--help") line += " " + o->get_name() + (o->get_expected() ? " " + o->as<std::string>() : "");
    train_main(*a, line);
  });
}

}  // namespace

SM_REGISTER_COMMAND(train, 50, train_setup);

}  // namespace sm::app
