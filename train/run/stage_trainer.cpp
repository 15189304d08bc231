// The training loop shared by the three networks (see stage_trainer.h).
#include "train/run/stage_trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>

#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/parameter_buffer.h"
#include "layers/scalar_ops.h"
#include "layers/weights.h"
#include "tensor/check.h"
#include "tensor/device_backend.h"
#include "tensor/file_io.h"
#include "tensor/json_field.h"
#include "tensor/stopwatch.h"
#include "train/dist/batch_stats_over_ranks.h"
#include "train/dist/gradient_sum.h"
#include "train/dist/module_broadcast.h"
#include "train/optim/lr_schedule.h"
#include "train/optim/optimizer.h"
#include "train/run/checkpoint_ring.h"
#include "train/run/metrics_log.h"
#include "train/run/stop_signal.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

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

// The loader of a stage: its batch size and threads over the data's own settings; with several
// ranks, this rank's slice of every batch.
LoaderConfig loader_config_for(const StageOptions& o, const LoaderConfig& lc, const Communicator* comm) {
  LoaderConfig c = lc;
  c.batch = o.batch;
  c.threads = o.loader_threads;
  if (comm) c.shard = comm->rank(), c.shards = comm->size();
  return c;
}

double mask_sum(const Tensor& mask) {  // mask on the CPU
  double s = 0;
  for (int64_t i = 0; i < mask.numel(); ++i) s += double(mask.f32()[i]);
  return s;
}

// One forward + loss + backward; returns the loss of the WHOLE batch (gradients are in the
// parameter buffer; with several ranks, this rank's share of them, summed by the caller).
// `b` is the batch on the network's device; `mask` its visibility mask on the CPU.
// Both loss terms are means over the visible landmarks (dsnt_losses.h): rank r's loss is
// ℓ_r = S_r / V_r, the batch's ℓ = Σ S_r / Σ V_r = Σ_r (V_r / V) ℓ_r. So rank r backpropagates
// (V_r / V) ℓ_r and the sum of the ranks' gradients is the gradient of ℓ. The loss is summed
// BEFORE any backward: a non-finite loss then stops every rank at the same point (a rank that
// skipped its backward would leave the others waiting in BatchNorm's reduction).
double step_loss_backward(const StageOptions& o, DsntNet& net, const Batch& b, const Tensor& mask, Communicator* comm) {
  net.train();
  DsntOutput out = net.forward_all(Var(b.images));
  Var loss = euclidean_loss(out.coords, b.targets, b.mask);
  if (o.js_lambda != 0) loss = add(loss, scale(js_regularizer(out.heatmaps, b.targets, o.sigma, b.mask), o.js_lambda));
  double value = loss.value().item();  // on a GPU: the step's one scalar copy back, besides the gradient norm
  if (comm && comm->size() > 1) {
    const double visible = mask_sum(mask);
    double sums[2] = {visible, value * visible};  // [V_r, S_r] -> [V, S]
    comm->sum(sums, 2);
    const double share = sums[0] > 0 ? visible / sums[0] : 0.0;
    value = sums[0] > 0 ? sums[1] / sums[0] : 0.0;
    if (std::isfinite(value)) loss = scale(loss, share);
  }
  if (std::isfinite(value)) backward(loss);
  return value;
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
  std::vector<std::string> known{"comment"};
  const nlohmann::json defaults = stage_options_to_json(d);  // named: items() of a temporary would dangle
  for (const auto& [key, value] : defaults.items()) known.push_back(key);
  json_keys_check(j, known, where);
  o.batch = json_field(j, "batch", o.batch, where);
  o.steps = json_field(j, "steps", o.steps, where);
  // A stage given a step count and no budget trains exactly those steps, whatever the clock.
  const auto given = [&j](const char* key) { return j.contains(key) && !j[key].is_null(); };
  o.minutes = given("steps") && !given("minutes") ? 0.0 : json_field(j, "minutes", o.minutes, where);
  o.optimizer = json_field(j, "optimizer", o.optimizer, where);
  o.lr = json_field(j, "lr", o.lr, where);
  o.weight_decay = json_field(j, "weight_decay", o.weight_decay, where);
  o.warmup_steps = json_field(j, "warmup_steps", o.warmup_steps, where);
  o.min_lr_factor = json_field(j, "min_lr_factor", o.min_lr_factor, where);
  o.sigma = json_field(j, "sigma", o.sigma, where);
  o.js_lambda = json_field(j, "js_lambda", o.js_lambda, where);
  o.grad_clip = json_field(j, "grad_clip", o.grad_clip, where);
  o.validations = json_field(j, "validations", o.validations, where);
  o.log_every = json_field(j, "log_every", o.log_every, where);
  o.loader_threads = json_field(j, "loader_threads", o.loader_threads, where);
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
  net.to_device(o.device);  // before the ParameterBuffer: it gathers the values where they live
  ParameterBuffer params(net);
  auto opt = optimizer_make(o, params);
  Loader loader(loader_config_for(o, lc, hooks.comm), make);  // exactly what stage_train will use
  loader.epoch_start(1u << 20);  // an epoch the run never reaches, so nothing is cached ahead
  Batch b;
  double t_step = 0;
  // On the CPU a step's compute dwarfs the loader's work: 3 steps, the batch's wait excluded. A GPU
  // step can be faster than the loader's threads build batches, so there the clock also runs
  // while the step waits for its batch, over more steps (once the prefetched batches are used
  // up, that is the rate the run will get).
  const bool gpu = o.device != Device::CPU;
  const int warm = gpu ? 3 : 1, timed = gpu ? 12 : 3;
  for (int k = 0; k < warm + timed; ++k) {
    const Stopwatch step_time;
    if (!loader.next(b)) loader.epoch_start((1u << 20) + uint64_t(k)), loader.next(b);
    const double waited = step_time.seconds();
    opt->zero_grad();
    // Each rank times its own slice; the caller shares rank 0's plan.
    step_loss_backward(o, net, batch_to_device(b, o.device), b.mask, nullptr);
    opt->step();
    if (gpu) device_backend().synchronize();  // the step's kernels are done
    if (k >= warm) t_step += (step_time.seconds() - (gpu ? 0.0 : waited)) / timed;
  }
  const Stopwatch val_time;
  if (hooks.validate) hooks.validate(net);
  const double t_val = val_time.seconds();
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

namespace {

// Validates and keeps the best weights, by validation landmark error, never by loss (method.md
// §6); best.safetensors exists from the first validation on, even when it gave no finite error.
// Every rank validates (the same weights give the same error) and keeps the same best; rank 0
// alone writes.
struct Validator {
  const StageHooks& hooks;
  DsntNet& net;
  MetricsLog& metrics;
  std::string best_path;
  double best_val = INFINITY;
  int64_t best_step = 0;
  bool writes = true;

  void run(int64_t step) {
    const double v = hooks.validate ? hooks.validate(net) : NAN;
    net.train();
    const bool better = std::isfinite(v) && v < best_val;
    if (better) best_val = v, best_step = step;
    if (writes && (better || !file_exists(best_path))) weights_save(best_path, net);
    metrics.val_write(step, v, better, best_val, best_step);
  }
};

// What a stage checkpoint carries beside the weights, the optimizer and the data position
// (TrainState::extra_json), so that a resumed stage goes on exactly.
struct StageProgress {
  double best_val = INFINITY;  // null in the JSON before the first validation
  int64_t best_step = 0;
  double elapsed_s = 0;
  MetricsLog::Interval interval;  // the partial logging interval, so that log lines match too
};

std::string stage_progress_to_json(const StageProgress& p) {
  return nlohmann::json{{"best_val", p.best_val}, {"best_step", p.best_step}, {"elapsed_s", p.elapsed_s},
                        {"loss_sum", p.interval.loss_sum}, {"loss_n", p.interval.loss_n}}.dump();
}

StageProgress stage_progress_from_json(const std::string& text, const std::string& where) {
  const nlohmann::json x = nlohmann::json::parse(text);  // checked by checkpoint_load
  StageProgress p;
  p.best_val = json_field(x, "best_val", p.best_val, where);
  p.best_step = json_field(x, "best_step", p.best_step, where);
  p.elapsed_s = json_field(x, "elapsed_s", p.elapsed_s, where);
  p.interval.loss_sum = json_field(x, "loss_sum", p.interval.loss_sum, where);
  p.interval.loss_n = json_field(x, "loss_n", p.interval.loss_n, where);
  return p;
}

void stage_folder_create(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SM_CHECK(!ec, dir << ": cannot create the stage folder: " << ec.message());
}

// With `resume` and a checkpoint in the folder: loads it into net, opt and st and returns the
// progress it carried. Otherwise a fresh start: clears an earlier attempt's files (rank 0),
// returns none. Every rank of a data-parallel run reads the same checkpoint (the run folder is
// on a filesystem they all see); the data position counts global batches, so a run resumes with
// any number of ranks.
std::optional<StageProgress> stage_start(const StageOptions& o, const CheckpointRing& ring, bool resume, DsntNet& net,
                                         Optimizer& opt, TrainState& st, const StageHooks& hooks, bool writes) {
  const std::vector<std::string> candidates = resume ? ring.resume_candidates() : std::vector<std::string>{};
  if (candidates.empty()) {
    if (writes) ring.clear();
    return std::nullopt;
  }
  // A damaged latest pair (truncated or corrupt file, a hash mismatch) falls back to the intact
  // previous one of the ring: the run repeats the steps in between and still ends bit-identical.
  std::string failures;
  for (const std::string& prefix : candidates) {
    try {
      st = checkpoint_load(prefix, net, opt);
      StageProgress p = stage_progress_from_json(st.extra_json, checkpoint_paths(prefix).state);
      if (!failures.empty() && hooks.log)
        hooks.log(o.name + ": resuming from the previous checkpoint " + fs::path(prefix).filename().string() + failures);
      if (hooks.log) hooks.log(o.name + ": resumed at step " + std::to_string(st.step) + "/" + std::to_string(o.steps));
      return p;
    } catch (const Error& e) {
      failures += "; checkpoint " + fs::path(prefix).filename().string() + " is damaged and was not used (" + e.what() + ")";
    }
  }
  SM_FAIL(o.name << ": no intact checkpoint to resume from" << failures
                 << " (start the stage afresh: train --overwrite, or remove the stage folder)");
}

// One training step on batch b (built on the CPU, uploaded here to the network's device):
// forward, loss, backward, the gradient sum over the ranks, clipping, the optimizer's step. A loss
// or gradient norm that is not finite stops the run before the step, so the weights and the last
// checkpoint stay good. With several ranks the loss and the gradients are those of the whole
// batch (summed over the ranks), so every rank takes the same decisions. Returns {loss, gradient
// norm}.
std::pair<double, double> step_train(const StageOptions& o, DsntNet& net, ParameterBuffer& params, Optimizer& opt,
                                     const Batch& b, double lr, int64_t step, Communicator* comm, GradientSum& grads_sum) {
  opt.lr_set(lr);
  opt.zero_grad();
  const double loss = step_loss_backward(o, net, batch_to_device(b, o.device), b.mask, comm);
  SM_CHECK(std::isfinite(loss), o.name << ": the loss became " << loss << " at step " << step
                                       << "; stopped, the last good checkpoint is kept (try a smaller lr)");
  grads_sum.sum(params);
  const double gn = grad_clip_norm(params, o.grad_clip);
  SM_CHECK(std::isfinite(gn), o.name << ": the gradient norm became " << gn << " at step " << step
                                     << "; stopped, the last good checkpoint is kept (try a smaller lr or grad_clip)");
  opt.step();
  return {loss, gn};
}

// Why the stage stops after `step` ("" when it goes on): the time budget, Ctrl-C / SIGTERM, or
// the fault tests' stop_after_steps. With several ranks, a vote: when any rank wants to stop,
// every rank stops after this same step, for the reason that ranks first here (a clock or a
// signal seen by one rank only must not leave the others waiting for it).
std::string stop_reason(const StageOptions& o, int64_t step, double elapsed_s, Communicator* comm) {
  static const char* const reasons[] = {"", "stop_after_steps", "interrupted", "time budget"};  // by rank
  int code = 0;
  if (o.minutes > 0 && elapsed_s > o.minutes * 60.0) code = 3;
  else if (stop_requested()) code = 2;
  else if (o.stop_after_steps > 0 && step >= o.stop_after_steps) code = 1;
  if (comm) code = comm->vote_max(code);
  return reasons[code];
}

}  // namespace

std::string stage_checkpoint_latest(const std::string& dir) { return CheckpointRing(dir).latest(); }

StageResult stage_train(const StageOptions& o, DsntNet& net, const LoaderConfig& lc, const SampleFn& make,
                        const std::string& dir, bool resume, const StageHooks& hooks) {
  SM_CHECK(o.steps > 0, o.name << ": no step count (plan it from the time budget first)");
  const Stopwatch time;
  Communicator* comm = hooks.comm && hooks.comm->size() > 1 ? hooks.comm : nullptr;
  const bool writes = !comm || comm->rank() == 0;
  // SyncBatchNorm for the whole stage (the validations run BatchNorm in eval mode: no reductions).
  std::optional<BatchStatsOverRanks> bn_over_ranks;
  if (comm) bn_over_ranks.emplace(*comm);
  BatchStatsReducerScope bn_scope(comm ? &*bn_over_ranks : nullptr);
  if (writes) stage_folder_create(dir);
  // The network trains on o.device and goes back where it came from at the end (the caller's
  // pipelines and model folder see it there). Moved before the ParameterBuffer: that gathers the
  // values where they live.
  const Device home = net.device();
  net.to_device(o.device);
  GradientSum grads_sum(comm, o.device);
  if (comm && hooks.log) hooks.log(o.name + ": gradients summed over " + std::to_string(comm->size()) + " ranks by " +
                                   grads_sum.transport());  // the run's log: rank 0 writes it
  ParameterBuffer params(net);
  auto opt = optimizer_make(o, params);
  const LrSchedule schedule = schedule_make(o);
  const int64_t val_every = std::max<int64_t>(1, o.steps / o.validations);
  const CheckpointRing ring(dir);
  TrainState st;
  const std::optional<StageProgress> resumed = stage_start(o, ring, resume, net, *opt, st, hooks, writes);
  const StageProgress before = resumed.value_or(StageProgress{});
  if (writes) file_write_atomic((fs::path(dir) / "options.json").string(), stage_options_to_json(o).dump(2) + "\n");
  Loader loader(loader_config_for(o, lc, comm), make);
  loader.epoch_start(uint64_t(st.epoch), uint64_t(st.data_position));
  MetricsLog metrics(o, dir, resumed ? st.step : -1, before.interval, hooks.log, writes);
  Validator val{hooks, net, metrics, (fs::path(dir) / "best.safetensors").string(), before.best_val, before.best_step, writes};
  auto elapsed = [&] { return before.elapsed_s + time.seconds(); };
  auto save = [&] {
    st.extra_json = stage_progress_to_json({val.best_val, val.best_step, elapsed(), metrics.interval()});
    if (writes) ring.save(net, *opt, st);
  };
  StageResult res;
  Batch b;
  while (st.step < o.steps) {
    if (!loader.next(b)) {  // the epoch is over
      ++st.epoch, st.data_position = 0;
      loader.epoch_start(uint64_t(st.epoch));
      continue;
    }
    const double lr = schedule.lr_at(st.step);
    const auto [loss, grad_norm] = step_train(o, net, params, *opt, b, lr, st.step + 1, comm, grads_sum);
    ++st.step, ++st.data_position;
    metrics.loss_add(loss);
    if (st.step % o.log_every == 0 || st.step == o.steps) metrics.step_write(st.step, st.epoch, lr, grad_norm, elapsed());
    // A stage validates at fixed steps and when its budget runs out; it checkpoints then and on any stop.
    res.stop_reason = stop_reason(o, st.step, elapsed(), comm);
    const bool validate = st.step % val_every == 0 || st.step == o.steps || res.stop_reason == "time budget";
    if (validate) val.run(st.step);
    if (validate || !res.stop_reason.empty()) save();
    if (!res.stop_reason.empty()) break;
  }
  res.steps_done = st.step;
  res.completed = st.step >= o.steps;
  res.best_val = val.best_val, res.best_step = val.best_step;
  res.seconds = elapsed();
  if (res.completed || res.stop_reason == "time budget") {
    if (writes) weights_load(val.best_path, net);  // rank 0 reads the file it wrote; the others get its weights
  }
  net.to_device(home);
  if (comm && (res.completed || res.stop_reason == "time budget")) module_broadcast(*comm, net);
  return res;
}

}  // namespace sm
