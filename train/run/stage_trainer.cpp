// The training loop shared by the three networks (see stage_trainer.h).
#include "train/run/stage_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/parameter_buffer.h"
#include "layers/scalar_ops.h"
#include "layers/weights.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "train/optim/lr_schedule.h"
#include "train/optim/optimizer.h"
#include "train/run/checkpoint.h"
#include "train/run/curves_plot.h"
#include "train/run/stop_signal.h"

namespace sm {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::unique_ptr<Optimizer> optimizer_make(const StageOptions& o, ParameterBuffer& params) {
  if (o.optimizer == "adam" || o.optimizer == "adamw") {
    AdamConfig c;
    c.lr = o.lr;
    c.weight_decay = o.weight_decay;
    if (o.optimizer == "adamw") return std::make_unique<AdamW>(params, c);
    return std::make_unique<Adam>(params, c);
  }
  RmspropConfig c;
  c.lr = o.lr;
  c.weight_decay = o.weight_decay;
  return std::make_unique<Rmsprop>(params, c);
}

LrSchedule schedule_make(const StageOptions& o) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::Cosine;
  s.base_lr = o.lr;
  s.min_lr = o.lr * o.min_lr_factor;
  s.total_steps = o.steps;
  s.warmup_steps = std::min(o.warmup_steps, std::max<int64_t>(0, o.steps - 1));
  return s;
}

std::string duration_str(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", int(s / 3600), int(std::fmod(s, 3600) / 60));
  else std::snprintf(buf, sizeof buf, "%dm%02ds", int(s / 60), int(std::fmod(s, 60)));
  return buf;
}

// One forward + loss + backward; returns the loss (gradients are in the parameter buffer).
double step_loss_backward(const StageOptions& o, DsntNet& net, const Batch& b) {
  net.train();
  DsntOutput out = net.forward_all(Var(b.images));
  Var loss = euclidean_loss(out.coords, b.targets, b.mask);
  if (o.js_lambda != 0) loss = add(loss, scale(js_regularizer(out.heatmaps, b.targets, o.sigma, b.mask), o.js_lambda));
  const double value = loss.value().item();
  if (std::isfinite(value)) backward(loss);
  return value;
}

// The run's history as far as the checkpoint: metrics.jsonl lines past `step` (written after the
// checkpoint by a run that was then killed) are dropped, so a resumed log has no duplicates.
struct History {
  std::vector<double> loss_step, loss, val_step, val;
};

History metrics_rewind(const std::string& path, int64_t step) {
  History h;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() > step) continue;
    kept += line + "\n";
    // Non-finite values were written as null (JSON has no NaN): they come back as NaN.
    auto number = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : NAN; };
    if (j.value("type", "") == "step") h.loss_step.push_back(number(j["step"])), h.loss.push_back(number(j["loss"]));
    if (j.value("type", "") == "val") h.val_step.push_back(number(j["step"])), h.val.push_back(number(j["val_error_px"]));
  }
  file_write_atomic(path, kept);
  return h;
}

void curves_write(const std::string& path, const std::string& stage, const History& h) {
  CurvePanel loss{stage + ": training loss", "step", "loss", true, {{"loss", h.loss_step, h.loss, {40, 90, 200}}}};
  CurvePanel val{stage + ": validation error", "step", "mean landmark error (px)", true,
                 {{"validation", h.val_step, h.val, {220, 60, 40}}}};
  curves_plot_png(path, {loss, val});
}

// Removes all but the newest `keep` checkpoint pairs (names ckpt-<zero-padded step>.*).
void checkpoints_prune(const std::string& dir, size_t keep) {
  std::vector<std::string> prefixes;
  for (const auto& f : fs::directory_iterator(dir)) {
    const std::string n = f.path().filename().string();
    if (n.rfind("ckpt-", 0) == 0) prefixes.push_back(n.substr(0, n.find('.')));
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  std::error_code ec;
  for (size_t k = 0; k + keep < prefixes.size(); ++k) {
    const CheckpointPaths p = checkpoint_paths((fs::path(dir) / prefixes[k]).string());
    fs::remove(p.weights, ec);
    fs::remove(p.state, ec);
  }
}

}  // namespace

nlohmann::json stage_options_to_json(const StageOptions& o) {
  return {{"batch", o.batch},         {"steps", o.steps},     {"minutes", o.minutes},
          {"optimizer", o.optimizer}, {"lr", o.lr},           {"weight_decay", o.weight_decay},
          {"warmup_steps", o.warmup_steps}, {"min_lr_factor", o.min_lr_factor}, {"sigma", o.sigma},
          {"js_lambda", o.js_lambda}, {"grad_clip", o.grad_clip}, {"validations", o.validations},
          {"log_every", o.log_every}, {"loader_threads", o.loader_threads}};
}

StageOptions stage_options_from_json(const nlohmann::json& j, const StageOptions& d, const std::string& where) {
  StageOptions o = d;
  if (j.is_null()) return o;
  SM_CHECK(j.is_object(), where << ": must be a JSON object");
  const nlohmann::json known = stage_options_to_json(d);
  try {
    for (const auto& [key, value] : j.items()) {
      SM_CHECK(known.contains(key) || key == "comment",
               where << ": unknown key '" << key << "'");
      // A whole-number option given 4.4e65 would be converted to int out of range (undefined).
      SM_CHECK(key == "comment" || !known[key].is_number_integer() || value.is_number_integer(),
               where << "." << key << " must be a whole number");
    }
    o.batch = j.value("batch", o.batch);
    o.steps = j.value("steps", o.steps);
    // A stage given a step count and no budget trains exactly those steps, whatever the clock.
    o.minutes = j.contains("steps") && !j.contains("minutes") ? 0.0 : j.value("minutes", o.minutes);
    o.optimizer = j.value("optimizer", o.optimizer);
    o.lr = j.value("lr", o.lr);
    o.weight_decay = j.value("weight_decay", o.weight_decay);
    o.warmup_steps = j.value("warmup_steps", o.warmup_steps);
    o.min_lr_factor = j.value("min_lr_factor", o.min_lr_factor);
    o.sigma = j.value("sigma", o.sigma);
    o.js_lambda = j.value("js_lambda", o.js_lambda);
    o.grad_clip = j.value("grad_clip", o.grad_clip);
    o.validations = j.value("validations", o.validations);
    o.log_every = j.value("log_every", o.log_every);
    o.loader_threads = j.value("loader_threads", o.loader_threads);
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(where << ": " << e.what());
  }
  SM_CHECK(o.batch >= 1 && o.batch <= 4096, where << ".batch " << o.batch << " outside 1..4096");
  SM_CHECK(o.steps >= 0 && o.steps <= 100000000, where << ".steps " << o.steps << " outside 0..1e8");
  SM_CHECK(o.minutes >= 0 && o.minutes <= 100000, where << ".minutes " << o.minutes << " outside 0..100000");
  SM_CHECK(o.steps > 0 || o.minutes > 0, where << ": give 'steps' (> 0) or 'minutes'");
  SM_CHECK(o.optimizer == "adam" || o.optimizer == "adamw" || o.optimizer == "rmsprop",
           where << ".optimizer '" << o.optimizer << "' is not adam, adamw or rmsprop");
  SM_CHECK(o.lr > 0 && o.lr < 10, where << ".lr " << o.lr << " outside (0, 10)");
  SM_CHECK(o.weight_decay >= 0 && o.min_lr_factor >= 0 && o.min_lr_factor <= 1, where << ": weight_decay >= 0, min_lr_factor in 0..1");
  SM_CHECK(o.warmup_steps >= 0 && o.sigma > 0 && o.sigma < 100 && o.js_lambda >= 0 && o.grad_clip >= 0,
           where << ": warmup_steps >= 0, sigma in (0, 100), js_lambda >= 0, grad_clip >= 0");
  SM_CHECK(o.validations >= 1 && o.validations <= 10000 && o.log_every >= 1 && o.loader_threads >= 1 && o.loader_threads <= 64,
           where << ": validations 1..10000, log_every >= 1, loader_threads 1..64");
  return o;
}

int64_t stage_steps_plan(const StageOptions& o, const DsntNetConfig& cfg, const LoaderConfig& lc, const SampleFn& make,
                         const StageHooks& hooks) {
  SM_CHECK(o.minutes > 0, o.name << ": planning needs a time budget ('minutes')");
  Rng rng(0x91a2ULL);
  DsntNet net(cfg, rng);  // a throwaway copy: the real run starts from its own initialisation
  ParameterBuffer params(net);
  auto opt = optimizer_make(o, params);
  LoaderConfig lcfg = lc;  // exactly what stage_train will use
  lcfg.batch = o.batch;
  lcfg.threads = o.loader_threads;
  Loader loader(lcfg, make);
  loader.epoch_start(1u << 20);  // an epoch the run never reaches, so nothing is cached ahead
  Batch b;
  double t_step = 0;
  const int warm = 1, timed = 3;
  for (int k = 0; k < warm + timed; ++k) {
    if (!loader.next(b)) loader.epoch_start((1u << 20) + uint64_t(k)), loader.next(b);
    const auto t0 = Clock::now();
    opt->zero_grad();
    step_loss_backward(o, net, b);
    opt->step();
    if (k >= warm) t_step += seconds_since(t0) / timed;
  }
  auto t0 = Clock::now();
  if (hooks.validate) hooks.validate(net);
  const double t_val = seconds_since(t0);
  const double budget = o.minutes * 60.0 - double(o.validations + 1) * t_val;
  const int64_t steps = std::max<int64_t>(int64_t(budget / t_step), 10);
  if (hooks.log) {
    std::ostringstream m;
    m << o.name << ": " << t_step * 1000 << " ms/step, validation " << t_val << " s -> " << steps << " steps in "
      << o.minutes << " min";
    hooks.log(m.str());
  }
  return steps;
}

// Validates, records, keeps the best weights and writes the curves.
struct Validator {
  const StageOptions& o;
  const StageHooks& hooks;
  DsntNet& net;
  StageResult& res;
  History& hist;
  std::ofstream& metrics;
  std::string best_path, curves_path;

  void run(int64_t step) {
    const double v = hooks.validate ? hooks.validate(net) : NAN;
    net.train();
    const bool better = std::isfinite(v) && v < res.best_val;
    if (better || !file_exists(best_path)) {
      if (better) res.best_val = v, res.best_step = step;
      weights_save(best_path, net);
    }
    hist.val_step.push_back(double(step));
    hist.val.push_back(v);
    metrics << nlohmann::json{{"type", "val"}, {"step", step}, {"val_error_px", v}, {"best_val_error_px", res.best_val}}.dump()
            << "\n";
    metrics.flush();
    curves_write(curves_path, o.name, hist);
    if (hooks.log) {
      char line[160];
      std::snprintf(line, sizeof line, "%s validation at step %lld: mean error %.3f px%s (best %.3f px at step %lld)",
                    o.name.c_str(), (long long)step, v, better ? " *" : "", res.best_val, (long long)res.best_step);
      hooks.log(line);
    }
  }
};

std::string stage_checkpoint_latest(const std::string& dir) {
  const std::string pointer = (fs::path(dir) / "checkpoint.json").string();
  if (!file_exists(pointer)) return "";
  const nlohmann::json j = nlohmann::json::parse(file_read_all(pointer), nullptr, false);
  SM_CHECK(!j.is_discarded() && j.contains("prefix") && j["prefix"].is_string(), pointer << ": not a checkpoint pointer");
  return (fs::path(dir) / j["prefix"].get<std::string>()).string();
}

StageResult stage_train(const StageOptions& o, DsntNet& net, const LoaderConfig& lc, const SampleFn& make,
                        const std::string& dir, bool resume, const StageHooks& hooks) {
  SM_CHECK(o.steps > 0, o.name << ": no step count (plan it from the time budget first)");
  const auto t_start = Clock::now();
  std::error_code ec;
  fs::create_directories(dir, ec);
  SM_CHECK(!ec, dir << ": cannot create the stage folder: " << ec.message());
  const std::string metrics_path = (fs::path(dir) / "metrics.jsonl").string();
  ParameterBuffer params(net);
  auto opt = optimizer_make(o, params);
  const LrSchedule schedule = schedule_make(o);
  const int64_t val_every = std::max<int64_t>(1, o.steps / o.validations);
  StageResult res;
  res.best_val = INFINITY;
  TrainState st;
  double elapsed_before = 0, loss_sum = 0;
  int loss_n = 0;
  History hist;
  const std::string latest = resume ? stage_checkpoint_latest(dir) : "";
  if (!latest.empty()) {
    st = checkpoint_load(latest, net, *opt);
    const nlohmann::json x = nlohmann::json::parse(st.extra_json);
    auto number = [&x](const char* key, double fallback) { return x.contains(key) && x[key].is_number() ? x[key].get<double>() : fallback; };
    res.best_val = number("best_val", INFINITY);  // null before the first validation
    res.best_step = int64_t(number("best_step", 0));
    elapsed_before = number("elapsed_s", 0);
    loss_sum = number("loss_sum", 0);  // the partial logging interval, so log lines match too
    loss_n = int(number("loss_n", 0));
    hist = metrics_rewind(metrics_path, st.step);
    if (hooks.log) hooks.log(o.name + ": resumed at step " + std::to_string(st.step) + "/" + std::to_string(o.steps));
  } else {
    // A fresh start: nothing of an earlier attempt in this folder may be taken for this run's.
    std::vector<fs::path> stale;
    for (const auto& f : fs::directory_iterator(dir)) {
      const std::string n = f.path().filename().string();
      if (n.rfind("ckpt", 0) == 0 || n == "checkpoint.json" || n == "best.safetensors" || n == "done.json") stale.push_back(f.path());
    }
    for (const auto& f : stale) fs::remove(f);
    file_write_atomic(metrics_path, "");
  }
  file_write_atomic((fs::path(dir) / "options.json").string(), stage_options_to_json(o).dump(2) + "\n");
  std::ofstream metrics(metrics_path, std::ios::app);
  Validator val{o, hooks, net, res, hist, metrics, (fs::path(dir) / "best.safetensors").string(), (fs::path(dir) / "curves.png").string()};
  auto elapsed = [&] { return elapsed_before + seconds_since(t_start); };
  auto state_save = [&] {
    st.extra_json = nlohmann::json{{"best_val", res.best_val}, {"best_step", res.best_step}, {"elapsed_s", elapsed()},
                                   {"loss_sum", loss_sum}, {"loss_n", loss_n}}.dump();
    char name[32];
    std::snprintf(name, sizeof name, "ckpt-%09lld", (long long)st.step);
    const std::string prefix = (fs::path(dir) / name).string();
    checkpoint_save(prefix, net, *opt, st);
    // The pointer is replaced only once both files of the new pair are complete.
    file_write_atomic((fs::path(dir) / "checkpoint.json").string(), nlohmann::json{{"prefix", name}, {"step", st.step}}.dump() + "\n");
    checkpoints_prune(dir, 2);
  };

  LoaderConfig lcfg = lc;
  lcfg.batch = o.batch;
  lcfg.threads = o.loader_threads;
  Loader loader(lcfg, make);
  loader.epoch_start(uint64_t(st.epoch), uint64_t(st.data_position));
  Batch b;
  double gn = 0;
  auto t_log = Clock::now();
  int64_t step_log = st.step;
  while (st.step < o.steps) {
    if (!loader.next(b)) {
      ++st.epoch;
      st.data_position = 0;
      loader.epoch_start(uint64_t(st.epoch));
      continue;
    }
    const double lr = schedule.lr_at(st.step);
    opt->lr_set(lr);
    opt->zero_grad();
    const double loss = step_loss_backward(o, net, b);
    SM_CHECK(std::isfinite(loss), o.name << ": the loss became " << loss << " at step " << st.step + 1
                                         << "; stopped, the last good checkpoint is kept (try a smaller lr)");
    gn = grad_clip_norm(params, o.grad_clip);
    SM_CHECK(std::isfinite(gn), o.name << ": the gradient norm became " << gn << " at step " << st.step + 1
                                       << "; stopped, the last good checkpoint is kept (try a smaller lr or grad_clip)");
    opt->step();
    ++st.step;
    ++st.data_position;
    loss_sum += loss;
    ++loss_n;
    if (st.step % o.log_every == 0 || st.step == o.steps) {
      const double secs = seconds_since(t_log), ips = double(st.step - step_log) * o.batch / std::max(secs, 1e-9);
      const double eta = double(o.steps - st.step) * secs / std::max<double>(1, double(st.step - step_log));
      metrics << nlohmann::json{{"type", "step"}, {"step", st.step}, {"epoch", st.epoch}, {"loss", loss_sum / loss_n},
                                {"lr", lr}, {"grad_norm", gn}, {"images_per_s", ips}, {"elapsed_s", elapsed()}}.dump() << "\n";
      hist.loss_step.push_back(double(st.step));
      hist.loss.push_back(loss_sum / loss_n);
      if (hooks.log) {
        char line[200];
        std::snprintf(line, sizeof line, "%-6s step %6lld/%lld  epoch %3lld  loss %.4f  lr %.2e  |g| %.3f  %6.1f img/s  ETA %s",
                      o.name.c_str(), (long long)st.step, (long long)o.steps, (long long)st.epoch, loss_sum / loss_n, lr, gn, ips,
                      duration_str(eta).c_str());
        hooks.log(line);
      }
      loss_sum = 0, loss_n = 0, t_log = Clock::now(), step_log = st.step;
    }
    const bool budget_out = o.minutes > 0 && elapsed() > o.minutes * 60.0;
    const bool interrupted = stop_requested(), test_stop = o.stop_after_steps > 0 && st.step >= o.stop_after_steps;
    if (st.step % val_every == 0 || st.step == o.steps || budget_out) {
      val.run(st.step);
      state_save();
    }
    if (budget_out || interrupted || test_stop) {
      if (interrupted || test_stop) state_save();
      res.stop_reason = budget_out ? "time budget" : interrupted ? "interrupted" : "stop_after_steps";
      break;
    }
  }
  res.steps_done = st.step;
  res.completed = st.step >= o.steps;
  res.seconds = elapsed();
  if (res.completed || res.stop_reason == "time budget") weights_load(val.best_path, net);
  return res;
}

}  // namespace sm
