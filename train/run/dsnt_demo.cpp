// The blob DSNT demo (see dsnt_demo.h).
#include "train/run/dsnt_demo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "layers/dsnt.h"
#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/parameter_buffer.h"
#include "layers/scalar_ops.h"
#include "models/image/overlay.h"
#include "models/nets/blob_net.h"
#include "tensor/device_backend.h"
#include "tensor/ops.h"
#include "tensor/rng.h"
#include "tensor/stopwatch.h"
#include "train/optim/lr_schedule.h"
#include "train/optim/optimizer.h"

namespace sm {

namespace {

struct Batch {
  Tensor images;   // (N, 1, S, S)
  Tensor targets;  // (N, 1, 2) normalised
  std::vector<double> px, py;
};

Batch batch_make(uint64_t seed, uint64_t first, int count, int size) {
  Batch b;
  b.images = Tensor::empty({count, 1, size, size});
  b.targets = Tensor::empty({count, 1, 2});
  for (int k = 0; k < count; ++k) {
    BlobExample ex = blob_example_make(seed, first + uint64_t(k), size);
    std::copy(ex.image.data.begin(), ex.image.data.end(), b.images.f32() + int64_t(k) * size * size);
    b.targets.f32()[2 * k] = float(dsnt_normalise(ex.x, size));
    b.targets.f32()[2 * k + 1] = float(dsnt_normalise(ex.y, size));
    b.px.push_back(ex.x);
    b.py.push_back(ex.y);
  }
  return b;
}

// Images and targets on `dev` (the batch is made on the host).
Batch batch_to(Batch b, Device dev) {
  b.images = b.images.to(dev);
  b.targets = b.targets.to(dev);
  return b;
}

std::vector<double> errors_px(const Tensor& coords_any, const Batch& b, int size) {
  const Tensor coords = coords_any.to(Device::CPU);
  std::vector<double> e;
  for (size_t k = 0; k < b.px.size(); ++k) {
    double x = dsnt_denormalise(coords.f32()[2 * k], size), y = dsnt_denormalise(coords.f32()[2 * k + 1], size);
    e.push_back(std::hypot(x - b.px[k], y - b.py[k]));
  }
  return e;
}

// A row of test images, each upscaled, with the heatmap blended in, truth green, prediction red.
void snapshot_write(const std::string& path, const Batch& b_any, const DsntOutput& out_any, int size, int shown) {
  const Batch b = batch_to(b_any, Device::CPU);
  DsntOutput out;
  out.heatmaps = Var(out_any.heatmaps.value().to(Device::CPU));
  out.coords = Var(out_any.coords.value().to(Device::CPU));
  const int scale = 6, tile = size * scale, gap = 4;
  RgbImage canvas((tile + gap) * shown - gap, tile, {255, 255, 255});
  for (int k = 0; k < shown; ++k) {
    Image big(tile, tile), heat(size, size);
    for (int y = 0; y < tile; ++y)
      for (int x = 0; x < tile; ++x) big.at(x, y) = b.images.f32()[(int64_t(k) * size + y / scale) * size + x / scale];
    const float* hm = out.heatmaps.value().f32() + int64_t(k) * size * size;
    std::copy(hm, hm + size * size, heat.data.begin());
    RgbImage t = overlay_from_gray(big);
    overlay_heatmap_blend(t, heat, 0.7f);
    auto to_canvas = [&](double p) { return (p + 0.5) * scale - 0.5; };
    overlay_point_draw(t, to_canvas(b.px[size_t(k)]), to_canvas(b.py[size_t(k)]), 4, {40, 220, 40});
    double x = dsnt_denormalise(out.coords.value().f32()[2 * k], size), y = dsnt_denormalise(out.coords.value().f32()[2 * k + 1], size);
    overlay_cross_draw(t, to_canvas(x), to_canvas(y), 6, {230, 30, 30});
    for (int y0 = 0; y0 < tile; ++y0)
      for (int x0 = 0; x0 < tile; ++x0)
        for (int c = 0; c < 3; ++c)
          canvas.rgb[(size_t(y0) * size_t(canvas.width) + size_t(k * (tile + gap) + x0)) * 3 + size_t(c)] = t.rgb[(size_t(y0) * size_t(tile) + size_t(x0)) * 3 + size_t(c)];
  }
  overlay_write_png(path, canvas);
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[size_t(std::min<double>(double(v.size() - 1), std::floor(q * double(v.size() - 1) + 0.5)))];
}

}  // namespace

// A Gaussian blob (σ 1.2–2.5 px, amplitude 0.6–1.2) on a sloped background with pixel noise
// (σ 0.15) and a dimmer, wider distractor blob, so that the network must find the brightest
// compact spot, not just any bright area. Standardised to zero mean, unit variance.
BlobExample blob_example_make(uint64_t seed, uint64_t index, int size) {
  Rng rng = Rng(seed).derive("blob", index);
  BlobExample ex;
  ex.image = Image(size, size);
  ex.image.format = "synthetic";
  const double margin = 2.0;
  ex.x = rng.uniform(margin, size - 1 - margin);
  ex.y = rng.uniform(margin, size - 1 - margin);
  const double sb = rng.uniform(1.2, 2.5), amp = rng.uniform(0.6, 1.2);
  const double dx0 = rng.uniform(0, size - 1), dy0 = rng.uniform(0, size - 1), sd = rng.uniform(4.0, 7.0);
  const double gx = rng.uniform(-0.3, 0.3) / size, gy = rng.uniform(-0.3, 0.3) / size;
  double mean = 0, sq = 0;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      double v = amp * std::exp(-((x - ex.x) * (x - ex.x) + (y - ex.y) * (y - ex.y)) / (2 * sb * sb));
      v += 0.25 * amp * std::exp(-((x - dx0) * (x - dx0) + (y - dy0) * (y - dy0)) / (2 * sd * sd));
      v += gx * x + gy * y + 0.15 * rng.normal();
      ex.image.at(x, y) = float(v);
      mean += v;
      sq += v * v;
    }
  const double n = double(size) * size;
  mean /= n;
  const double sdv = std::sqrt(std::max(1e-12, sq / n - mean * mean));
  for (float& v : ex.image.data) v = float((v - mean) / sdv);
  return ex;
}

namespace {

// Made before training, with parents, and with the real reason: otherwise the first snapshot
// fails minutes later on its temporary file and the cause (a permission, a file in the way) is
// hidden.
void snapshot_folder_prepare(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SM_CHECK(!ec && std::filesystem::is_directory(dir),
           dir << ": cannot create the snapshot folder (" << (ec ? ec.message() : "not a folder") << ")");
}

// Linear warm-up, then cosine decay to 1 % of the base rate at the last step.
LrSchedule blob_schedule_make(const BlobDemoConfig& cfg) {
  LrSchedule schedule;
  schedule.kind = LrSchedule::Kind::Cosine;
  schedule.base_lr = cfg.lr;
  schedule.min_lr = cfg.lr * 0.01;
  schedule.total_steps = cfg.steps;
  schedule.warmup_steps = cfg.warmup_steps;
  return schedule;
}

// One optimizer step on the batch of `step` (1-based): Euclidean + λ·JS, Adam. Returns what the
// progress line shows.
BlobDemoProgress blob_train_step(const BlobDemoConfig& cfg, BlobNet& net, ParameterBuffer& params, Adam& adam,
                                 const LrSchedule& schedule, int step) {
  const Stopwatch step_clock;
  const double lr = schedule.lr_at(step - 1);
  adam.lr_set(lr);
  Batch b = batch_to(batch_make(cfg.seed, uint64_t(step - 1) * uint64_t(cfg.batch), cfg.batch, cfg.image_size), cfg.device);
  net.train();
  DsntOutput out = net.forward_all(Var(b.images));
  Var loss = add(euclidean_loss(out.coords, b.targets), scale(js_regularizer(out.heatmaps, b.targets, cfg.sigma), cfg.js_lambda));
  SM_CHECK(std::isfinite(loss.value().item()),
           "dsnt-demo: the loss became " << loss.value().item() << " at step " << step << " (try a smaller --lr)");
  adam.zero_grad();
  backward(loss);
  const double gn = std::sqrt(tensor_sum_squares(params.groups()[0].grads));
  adam.step();
  BlobDemoProgress p;
  p.step = step, p.steps = cfg.steps, p.loss = loss.value().item(), p.grad_norm = gn, p.lr = lr, p.ms = step_clock.ms();
  p.samples_per_s = cfg.batch / (p.ms / 1000.0);
  std::vector<double> e = errors_px(out.coords.value(), b, cfg.image_size);
  for (double v : e) p.train_error_px += v / double(e.size());
  return p;
}

// Localisation errors (pixels) on the held-out images, in batches of 50, eval mode.
void blob_test(const BlobDemoConfig& cfg, BlobNet& net, uint64_t test_seed, BlobDemoResult& res) {
  NoGradGuard ng;
  net.eval();
  std::vector<double> errs;
  for (int first = 0; first < cfg.test_images; first += 50) {
    const int n = std::min(50, cfg.test_images - first);
    Batch b = batch_to(batch_make(test_seed, uint64_t(first), n, cfg.image_size), cfg.device);
    std::vector<double> e = errors_px(net.forward_all(Var(b.images)).coords.value(), b, cfg.image_size);
    errs.insert(errs.end(), e.begin(), e.end());
  }
  for (double e : errs) res.mean_error_px += e / double(errs.size());
  res.median_error_px = percentile(errs, 0.5);
  res.p90_error_px = percentile(errs, 0.9);
  res.max_error_px = *std::max_element(errs.begin(), errs.end());
  res.test_images = int(errs.size());
}

}  // namespace

BlobDemoResult blob_demo_run(const BlobDemoConfig& cfg, const std::function<void(const BlobDemoProgress&)>& on_progress) {
  SM_CHECK(cfg.image_size >= 8 && cfg.batch >= 1 && cfg.steps >= 1 && cfg.test_images >= 1, "dsnt-demo: sizes must be positive");
  if (!cfg.out_dir.empty()) snapshot_folder_prepare(cfg.out_dir);
  const Stopwatch run_clock;
  Rng master(cfg.seed);
  Rng init = master.derive("init");
  BlobNet net(cfg.width, init);
  SM_CHECK(cfg.device == Device::CPU || cuda_available(), "dsnt-demo: no usable CUDA device for --device cuda");
  net.to_device(cfg.device);  // before the ParameterBuffer: it gathers the values where they live
  ParameterBuffer params(net);
  AdamConfig ac;
  ac.lr = cfg.lr;
  Adam adam(params, ac);
  const LrSchedule schedule = blob_schedule_make(cfg);
  BlobDemoResult res;
  std::vector<int> snaps = cfg.snapshot_steps;
  if (snaps.empty()) snaps = {1, std::max(1, cfg.steps / 4), std::max(1, cfg.steps / 2), cfg.steps};

  const uint64_t test_seed = hash_mix(cfg.seed ^ 0x7e57ULL);  // held-out images never seen in training
  Batch shown = batch_to(batch_make(test_seed, 0, 4, cfg.image_size), cfg.device);
  for (int step = 1; step <= cfg.steps; ++step) {
    const BlobDemoProgress p = blob_train_step(cfg, net, params, adam, schedule, step);
    if (on_progress) on_progress(p);
    if (!cfg.out_dir.empty() && std::find(snaps.begin(), snaps.end(), step) != snaps.end()) {
      NoGradGuard ng;
      net.eval();
      char name[64];
      std::snprintf(name, sizeof name, "/step_%05d.png", step);
      snapshot_write(cfg.out_dir + name, shown, net.forward_all(Var(shown.images)), cfg.image_size, 4);
      res.pictures.push_back(cfg.out_dir + name);
    }
  }
  blob_test(cfg, net, test_seed, res);
  res.seconds = run_clock.seconds();
  return res;
}

}  // namespace sm
