// bench_run (see bench_run.h): the peer benchmark's network and conv cases.
#include "train/bench/bench_run.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "layers/dsnt.h"
#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/parameter_buffer.h"
#include "models/nets/dsnt_net.h"
#include "tensor/device_backend.h"
#include "tensor/kernels/context.h"
#include "tensor/rng.h"
#include "tensor/stopwatch.h"
#include "train/bench/pipeline_bench.h"
#include "train/optim/optimizer.h"

namespace sm {

namespace {

struct Case {
  const char* name;
  int64_t k, h, w, batch;
};
const Case kCases[] = {{"coarse", 22, 256, 256, 8}, {"refine", 4, 128, 128, 32}, {"detect", 6, 256, 256, 8}};

double maxrss_mib() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}
double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}
nlohmann::json stats(std::vector<double> ts) {
  std::sort(ts.begin(), ts.end());
  const size_t n = ts.size();
  const double median = n % 2 ? ts[n / 2] : 0.5 * (ts[n / 2 - 1] + ts[n / 2]);
  return {{"median_s", round_to(median, 5)}, {"min_s", round_to(ts.front(), 5)}, {"max_s", round_to(ts.back(), 5)}, {"n", n}};
}
// Random values drawn on the host (same values for every device), then moved to `dev`.
Tensor random_tensor(const Shape& s, Rng& rng, double lo, double hi, Device dev = Device::CPU) {
  Tensor t = Tensor::empty(s);
  tensor_fill_uniform(t, rng, lo, hi);
  return t.to(dev);
}
// Waits for queued GPU work, so that the clock read next measures it.
void device_sync(Device dev) {
  if (dev == Device::CUDA) device_backend().synchronize();
}
double gpu_peak_mib() { return double(device_backend().memory_peak_bytes()) / double(1 << 20); }

// The peer's HeatmapNet: ResNet-18 widths, stage 4 at stride 1 without dilation (output stride 16).
DsntNetConfig bench_network(int64_t k) {
  DsntNetConfig c;
  c.backbone.depth = 18;
  c.backbone.widths = {64, 128, 256, 512};
  c.backbone.in_channels = 1;
  c.backbone.output_stride = 16;
  c.backbone.dilate = false;
  c.landmarks = k;
  return c;
}

// Conv multiply-adds of one batch-1 forward, counted by the network itself.
int64_t forward_macs_count(DsntNet& net, const Case& cs, Device dev) {
  NoGradGuard ng;
  net.eval();
  ExecContext counting;  // a context of its own: its counter sees this forward only
  ExecScope scope(counting);
  net.forward_all(Var(Tensor::zeros({1, 1, cs.h, cs.w}, DType::F32, dev)));
  return counting.counters.conv2d_forward_macs.load();
}

// What every record of one network shares: the PyTorch peer's keys, by which bench/compare.py pairs records.
struct ModelBench {
  const Case& cs;
  const BenchOptions& a;
  Device dev;
  int64_t fwd_macs = 0;
  double rss_model = 0;
  nlohmann::json common;
};

// Inference as predict runs it: frozen (BN folded, weights prepared once; Module::inference_freeze).
void bench_infer(const ModelBench& m, DsntNet& net, Rng& rng, int64_t batch, int reps, const char* name,
                 const BenchRecordCallback& emit) {
  NoGradGuard ng;
  if (m.a.unfrozen)
    net.eval();
  else
    net.inference_freeze();
  Var x(random_tensor({batch, 1, m.cs.h, m.cs.w}, rng, -1, 1, m.dev));
  std::vector<double> ts;
  for (int i = 0; i < m.a.warmup + reps; ++i) {
    device_sync(m.dev);
    const Stopwatch clock;
    net.forward_all(x);
    device_sync(m.dev);
    if (i >= m.a.warmup) ts.push_back(clock.seconds());
  }
  nlohmann::json s = stats(ts), j = m.common;
  const double med = s["median_s"];
  j.update(s);
  j["bench"] = name;
  j["inference"] = m.a.unfrozen ? "unfrozen" : "frozen";
  j["img_per_s"] = round_to(double(batch) / med, 2);
  j["gflops_achieved"] = round_to(2.0 * double(m.fwd_macs) * double(batch) / med / 1e9, 2);
  j["maxrss_mib"] = round_to(maxrss_mib(), 1);
  if (batch == 1) j["maxrss_before_mib"] = round_to(m.rss_model, 1);
  emit(j);
}

// Training step: forward + mean Euclidean + mean JS + backward + Adam, BN in training mode.
void bench_train_step(const ModelBench& m, DsntNet& net, double train_flops_img, const BenchRecordCallback& emit) {
  const Case& cs = m.cs;
  net.train();
  ParameterBuffer params(net);
  Adam adam(params, AdamConfig{});
  Rng g(1);
  Var x(random_tensor({cs.batch, 1, cs.h, cs.w}, g, -1, 1, m.dev));
  Tensor tc = random_tensor({cs.batch, cs.k, 2}, g, -0.9, 0.9, m.dev);
  std::vector<double> ts;
  std::vector<Tensor> losses;  // read after the timed loop: item() would synchronise each step
  for (int i = 0; i < m.a.warmup + m.a.steps; ++i) {
    device_sync(m.dev);
    const Stopwatch clock;
    adam.zero_grad();
    DsntOutput out = net.forward_all(x);
    Var loss = add(euclidean_loss(out.coords, tc), js_regularizer(out.heatmaps, tc, 1.0));
    backward(loss);
    adam.step();
    device_sync(m.dev);
    if (i >= m.a.warmup) ts.push_back(clock.seconds());
    losses.push_back(loss.value());
  }
  nlohmann::json s = stats(ts), j = m.common;
  const double med = s["median_s"];
  j.update(s);
  j["bench"] = "train_step";
  j["img_per_s"] = round_to(double(cs.batch) / med, 2);
  j["gflops_achieved"] = round_to(train_flops_img * double(cs.batch) / med / 1e9, 2);
  j["loss_first"] = round_to(losses.front().item(), 4);
  j["loss_last"] = round_to(losses.back().item(), 4);
  j["maxrss_mib"] = round_to(maxrss_mib(), 1);
  if (m.dev == Device::CUDA) {
    j["gpu_max_alloc_mib"] = round_to(gpu_peak_mib(), 1);
    j["cudnn_deterministic"] = device_backend().deterministic_mode();
  }
  emit(j);
}

void bench_model(const Case& cs, const BenchOptions& a, Device dev, const BenchRecordCallback& emit) {
  Rng rng(0);
  DsntNet net(bench_network(cs.k), rng);
  net.to_device(dev);
  ModelBench m{cs, a, dev};
  m.rss_model = maxrss_mib();
  m.fwd_macs = forward_macs_count(net, cs, dev);
  // Training FLOPs: forward + two backward passes (input and weight gradients), less the stem's
  // input gradient, which nobody needs.
  const int64_t stem_macs = 64 * 49 * (cs.h / 2) * (cs.w / 2);
  const double train_flops_img = 2.0 * double(3 * m.fwd_macs - stem_macs);
  const int64_t hm = cs.h / 16;
  m.common = {{"model", cs.name}, {"threads", omp_get_max_threads()}, {"memory_format", "nchw"},
              {"K", cs.k}, {"input", {1, cs.h, cs.w}}, {"batch", cs.batch}, {"heatmap", {hm, hm}},
              {"params", net.parameter_count()}, {"fwd_gmacs_per_img", round_to(m.fwd_macs / 1e9, 4)},
              {"fwd_gflop_per_img", round_to(2 * m.fwd_macs / 1e9, 4)},
              {"train_gflop_per_img", round_to(train_flops_img / 1e9, 4)}, {"engine", "spinemark"},
              {"device", device_name(dev)}, {"omp_wait_policy", a.omp_wait_policy}};
  bench_infer(m, net, rng, 1, a.infer_reps, "infer_bs1", emit);
  bench_infer(m, net, rng, cs.batch, std::max(3, a.infer_reps / 4), "infer_bsN", emit);
  bench_train_step(m, net, train_flops_img, emit);
}

void bench_convs(const BenchOptions& a, Device dev, const BenchRecordCallback& emit) {
  const int64_t n = 8;
  for (auto [c, hw] : std::vector<std::pair<int64_t, int64_t>>{{64, 64}, {128, 32}, {256, 16}, {512, 16}}) {
    Rng rng(0);
    Var w(random_tensor({c, c, 3, 3}, rng, -0.05, 0.05, dev), true);
    Var x(random_tensor({n, c, hw, hw}, rng, -1, 1, dev), true);
    const double macs = double(n * c * c * 9 * hw * hw);
    std::vector<double> tf, tb, tot;
    for (int i = 0; i < a.warmup + a.conv_reps; ++i) {
      x.grad_release();
      w.grad_release();
      device_sync(dev);
      Stopwatch clock;
      Var y = conv2d(x, w, Var(), Conv2dParams::make(1, 1));
      device_sync(dev);
      const double f = clock.seconds();
      Tensor seed = Tensor::full(y.shape(), 1.0, DType::F32, dev);
      device_sync(dev);
      clock.restart();
      backward(y, seed);
      device_sync(dev);
      const double b = clock.seconds();
      if (i >= a.warmup) tf.push_back(f), tb.push_back(b), tot.push_back(f + b);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };
    const double f = median(tf), b = median(tb), ft = median(tot);
    emit({{"bench", "conv3x3"}, {"threads", omp_get_max_threads()}, {"memory_format", "nchw"}, {"N", n}, {"C", c},
          {"H", hw}, {"W", hw}, {"backend", dev == Device::CUDA ? "cudnn" : std::string("winograd/im2col+gemm:") + cpu_kernels_in_use()}, {"device", device_name(dev)},
          {"reps", a.conv_reps}, {"fwd_gflop", round_to(2 * macs / 1e9, 3)},
          {"fwd_ms", round_to(f * 1e3, 2)}, {"bwd_ms", round_to(b * 1e3, 2)}, {"fwdbwd_ms", round_to(ft * 1e3, 2)},
          {"fwd_gflops", round_to(2 * macs / f / 1e9, 1)}, {"bwd_gflops", round_to(4 * macs / b / 1e9, 1)},
          {"fwdbwd_gflops", round_to(6 * macs / ft / 1e9, 1)}, {"engine", "spinemark"}});
  }
}

// The device of --device: "cuda" needs a CUDA build and a usable GPU (fails with the reason);
// there the math modes are the peer's: measured cuDNN algorithms (torch.backends.cudnn.benchmark)
// and TF32 where the GPU has it; with `deterministic`, the fixed algorithms training uses by default.
Device bench_device(const std::string& name, bool deterministic) {
  const Device dev = device_select(name, "bench");
  if (dev == Device::CUDA) {
    device_backend().deterministic_mode_set(deterministic);
    device_backend().strict_mode_set(false);
  }
  return dev;
}

}  // namespace

void bench_run(const BenchOptions& a, const BenchRecordCallback& emit) {
  omp_set_num_threads(a.threads);
  const Device dev = bench_device(a.device, a.deterministic);
  if (a.model == "all") {
    nlohmann::json env = {{"bench", "env"}, {"engine", "spinemark"}, {"threads", omp_get_max_threads()},
                          {"steps", a.steps}, {"warmup", a.warmup}, {"device", a.device},
                          {"cpu_kernels", cpu_kernels_in_use()}};
    if (dev == Device::CUDA) {
      env["gpu"] = device_backend().describe();
      env["tf32"] = device_backend().tf32_active();
      env["cudnn_deterministic"] = device_backend().deterministic_mode();
    }
    emit(env);
  }
  for (const Case& cs : kCases)
    if (a.model == "all" || a.model == cs.name) bench_model(cs, a, dev, emit);
  if (a.model == "all" || a.model == "convs") bench_convs(a, dev, emit);
  if (a.model == "pipeline") {  // not part of "all": the peer has no pipeline to compare with
    PipelineBenchConfig pc;
    pc.device = dev, pc.reps = a.infer_reps, pc.warmup = a.warmup;
    for (const nlohmann::json& rec : pipeline_bench(pc)) emit(rec);
  }
}

}  // namespace sm
