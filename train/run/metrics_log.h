// A stage's metrics log (style.md rule 22: the numbers of each logged step and each validation go
// as JSON lines to metrics.jsonl and as one progress line to the app), and the history the curves
// are drawn from (curves.png, redrawn at each validation).
#pragma once
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tensor/stopwatch.h"
#include "train/run/stage_trainer.h"

namespace sm {

// The run so far, as drawn in curves.png.
struct MetricsHistory {
  std::vector<double> loss_step, loss, val_step, val;
};

class MetricsLog {
 public:
  // The steps since the last logged one: their mean loss is the next line's. Saved with each
  // checkpoint, so that a resumed run logs the same lines as an uninterrupted one.
  struct Interval {
    double loss_sum = 0;
    int loss_n = 0;
  };

  // A fresh start empties metrics.jsonl. A resumed one (resume_step >= 0) drops the lines past
  // the checkpoint's step (written by a run that was then killed), so that the log has no
  // duplicates, and reads the history back. With `write` false (the ranks other than 0 of a
  // data-parallel run) it keeps the interval and writes, draws and logs nothing.
  MetricsLog(const StageOptions& options, const std::string& stage_dir, int64_t resume_step, const Interval& interval,
             std::function<void(const std::string&)> log, bool write = true);

  void loss_add(double loss) { interval_.loss_sum += loss, ++interval_.loss_n; }
  const Interval& interval() const { return interval_; }
  // Closes the logging interval at `step`: one "step" line (mean loss, lr, gradient norm,
  // images/s) and a progress line with the ETA.
  void step_write(int64_t step, int64_t epoch, double lr, double grad_norm, double elapsed_s);
  // One "val" line and a progress line; redraws the curves.
  void val_write(int64_t step, double val_error, bool better, double best_val, int64_t best_step);

 private:
  const StageOptions& o_;
  std::string path_, curves_path_;
  std::function<void(const std::string&)> log_;
  MetricsHistory hist_;
  Interval interval_;
  Stopwatch interval_time_;
  int64_t interval_first_ = 0;  // the step the interval started after
  bool write_ = true;
  std::ofstream out_;
};

}  // namespace sm
