// The metrics log of a stage (see metrics_log.h).
#include "train/run/metrics_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tensor/file_io.h"
#include "tensor/json_field.h"
#include "train/run/curves_plot.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

// The history as far as `step`; the lines past it are dropped from the file. Lines that do not
// parse (a line cut by a kill) are dropped too.
MetricsHistory metrics_rewind(const std::string& path, int64_t step) {
  MetricsHistory h;
  std::ifstream in(path);
  std::string line, kept;
  for (int no = 1; std::getline(in, line); ++no) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step")) continue;
    const std::string where = path + ":" + std::to_string(no);
    const int64_t s = json_field_required<int64_t>(j, "step", where);
    if (s > step) continue;
    kept += line + "\n";
    // Non-finite values were written as null (JSON has no NaN): they come back as NaN.
    const std::string type = json_field<std::string>(j, "type", "", where);
    if (type == "step") h.loss_step.push_back(double(s)), h.loss.push_back(json_field(j, "loss", double(NAN), where));
    if (type == "val") h.val_step.push_back(double(s)), h.val.push_back(json_field(j, "val_error_px", double(NAN), where));
  }
  file_write_atomic(path, kept);
  return h;
}

void curves_write(const std::string& path, const std::string& stage, const MetricsHistory& h) {
  CurvePanel loss{stage + ": training loss", "step", "loss", true, {{"loss", h.loss_step, h.loss, {40, 90, 200}}}};
  CurvePanel val{stage + ": validation error", "step", "mean landmark error (px)", true,
                 {{"validation", h.val_step, h.val, {220, 60, 40}}}};
  curves_plot_png(path, {loss, val});
}

}  // namespace

MetricsLog::MetricsLog(const StageOptions& o, const std::string& dir, int64_t resume_step, const Interval& interval,
                       std::function<void(const std::string&)> log, bool write)
    : o_(o),
      path_((fs::path(dir) / "metrics.jsonl").string()),
      curves_path_((fs::path(dir) / "curves.png").string()),
      log_(std::move(log)),
      interval_(interval),
      interval_first_(std::max<int64_t>(resume_step, 0)),
      write_(write) {
  if (!write_) log_ = nullptr;
  if (!write_) return;
  if (resume_step >= 0) hist_ = metrics_rewind(path_, resume_step);
  else file_write_atomic(path_, "");
  out_.open(path_, std::ios::app);
}

void MetricsLog::step_write(int64_t step, int64_t epoch, double lr, double grad_norm, double elapsed_s) {
  const double secs = interval_time_.seconds(), loss = interval_.loss_sum / interval_.loss_n;
  const double ips = double(step - interval_first_) * o_.batch / std::max(secs, 1e-9);
  const double eta = double(o_.steps - step) * secs / std::max<double>(1, double(step - interval_first_));
  if (write_) out_ << nlohmann::json{{"type", "step"}, {"step", step}, {"epoch", epoch}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                         {"images_per_s", ips}, {"elapsed_s", elapsed_s}}.dump() << "\n";
  hist_.loss_step.push_back(double(step));
  hist_.loss.push_back(loss);
  if (log_) {
    char line[200];
    std::snprintf(line, sizeof line, "%-6s step %6lld/%lld  epoch %3lld  loss %.4f  lr %.2e  |g| %.3f  %6.1f img/s  ETA %s",
                  o_.name.c_str(), (long long)step, (long long)o_.steps, (long long)epoch, loss, lr, grad_norm, ips,
                  duration_text(eta).c_str());
    log_(line);
  }
  interval_ = Interval{};
  interval_time_.restart();
  interval_first_ = step;
}

void MetricsLog::val_write(int64_t step, double v, bool better, double best_val, int64_t best_step) {
  hist_.val_step.push_back(double(step));
  hist_.val.push_back(v);
  if (!write_) return;
  out_ << nlohmann::json{{"type", "val"}, {"step", step}, {"val_error_px", v}, {"best_val_error_px", best_val}}.dump() << "\n";
  out_.flush();
  curves_write(curves_path_, o_.name, hist_);
  if (log_) {
    char line[160];
    std::snprintf(line, sizeof line, "%s validation at step %lld: mean error %.3f px%s (best %.3f px at step %lld)",
                  o_.name.c_str(), (long long)step, v, better ? " *" : "", best_val, (long long)best_step);
    log_(line);
  }
}

}  // namespace sm
