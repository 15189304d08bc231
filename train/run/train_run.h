// A whole training run (method.md §5–6): split the data by seed, train detect and coarse, measure
// the step-1 crop errors on the validation split, train the refinement network on crops jittered
// like those errors and validated inside the pipeline, write the model folder and evaluate it on
// the validation split (metrics + report). The run folder records everything:
//   config.json (resolved; planned steps), run.json (revision, build, command), log.txt,
//   split.json, detect/ coarse/ refine/ (stage folders, see stage_trainer.h), jitter.json,
//   model/ (the model folder), eval-val/ (metrics.json, report.html, predictions/).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "train/dist/communicator.h"
#include "train/run/train_config.h"

namespace sm {

struct TrainRunOptions {
  std::string out;              // run folder
  std::string stage = "all";    // detect | coarse | refine | all
  bool resume = false;          // continue the run in `out` (its config.json is used)
  // A new run in a folder that already holds a run (config.json, or a stage's checkpoints or
  // done.json) is refused unless this is set: the earlier run's stages would be deleted.
  bool overwrite = false;
  // Options given on a --resume command line that the recorded config overrides ("--config",
  // "--threads"): the run says in one line that they are ignored.
  std::vector<std::string> ignored_on_resume;
  double minutes = 0;           // > 0: overall budget, split over the stages by their own budgets
  bool evaluate = true;         // evaluate the model on the validation split at the end
  std::string command_line;     // recorded in run.json
  std::function<void(const std::string&)> log;  // progress lines (also appended to log.txt)
  // The ranks of a data-parallel run (mpirun -np N spinemark train; docs/scaling.md), or null
  // for one process. Every rank runs the same run; rank 0 alone writes the run folder (which
  // every rank reads on --resume: it must be on a filesystem they all see).
  Communicator* comm = nullptr;
  // "cpu" or "cuda" (`train --device`), or "" for the config's "device". Given on --resume it
  // wins over the recorded config: a run started on one device continues on the other.
  std::string device;
};

struct TrainRunResult {
  std::string model_dir;
  std::map<std::string, StageResult> stages;
  bool completed = false;   // every requested stage finished
  std::string stop_reason;  // of the stage that stopped early
};

TrainRunResult train_run(TrainConfig config, const TrainRunOptions& options);

}  // namespace sm
