// golden_check FILE [--device cpu|cuda]: runs the network of a PyTorch golden fixture
// (tests/golden/make_golden.py) here and compares the heatmaps, coordinates, loss, every gradient,
// the losses of 5 Adam steps and the final weights and BN statistics. Exit 0 only if every
// comparison is within tolerance.
//
// Error measure: normalised error = max|ours − torch| / max(max|torch|, 1e-6) per tensor.
// float32 on both sides; the tolerances allow for different summation orders (GEMM, softmax,
// BN reductions), not for a wrong formula: a wrong op gives errors of order 1.
// --device cuda: the same comparisons with the network, input, targets and Adam on the GPU, in
// strict float32 (no TF32) and deterministic mode; tolerances (stated in kTolCuda) at most 2.5×
// the CPU ones, for cuDNN's algorithms (Winograd/FFT) and the GPU's reduction orders.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/dsnt_losses.h"
#include "layers/elementwise.h"
#include "layers/parameter_buffer.h"
#include "layers/scalar_ops.h"
#include "layers/weights.h"
#include "models/nets/dsnt_net.h"
#include "tensor/device_backend.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"
#include "train/optim/optimizer.h"


using namespace sm;

namespace {

struct Tolerances {
  double forward = 2e-5;  // heatmaps, coordinates
  double loss = 2e-5;     // relative
  double grad = 2e-3;     // normalised, per tensor
  double adam_loss = 1e-4;
  double final_weights = 2e-3;
};
constexpr Tolerances kTolCuda{1e-4, 1e-4, 5e-3, 2e-4, 5e-3};  // strict float32 on the GPU

struct Checker {
  int failures = 0, checks = 0;
  double worst_grad = 0;
  void compare(const std::string& what, const Tensor& ours, const Tensor& ref, double tol, bool quiet = false) {
    ++checks;
    if (ours.shape() != ref.shape()) {
      std::printf("FAIL %-40s shape %s vs torch %s\n", what.c_str(), shape_str(ours.shape()).c_str(), shape_str(ref.shape()).c_str());
      ++failures;
      return;
    }
    const double scale = std::max(tensor_max_abs(ref), 1e-6);
    const double err = tensor_max_abs_diff(ours, ref) / scale;
    const bool ok = err <= tol;  // NaN fails
    if (!ok) ++failures;
    if (!ok || !quiet) std::printf("%s %-40s normalised error %.3e (tolerance %.0e)\n", ok ? "ok  " : "FAIL", what.c_str(), err, tol);
  }
};

const Tensor& need(const SafeTensorsFile& f, const std::string& name, const std::string& path) {
  const Tensor* t = f.find(name);
  SM_CHECK(t, path << ": fixture has no tensor '" << name << "' (made by an older make_golden.py?)");
  return *t;
}

// The fixture's tensors under `prefix`, with the prefix removed: a state_dict.
SafeTensorsFile state_dict_from(const SafeTensorsFile& f, const std::string& prefix) {
  SafeTensorsFile out;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind(prefix, 0) == 0) out.tensors.push_back({name.substr(prefix.size()), t});
  return out;
}

Var dsnt_loss(const DsntOutput& out, const Tensor& target, const Tensor& mask, double sigma, double lambda) {
  return add(euclidean_loss(out.coords, target, mask), scale(js_regularizer(out.heatmaps, target, sigma, mask), lambda));
}

int golden_run(const std::string& path, Device dev) {
  SafeTensorsFile fx = safetensors_read(path);
  auto it = fx.metadata.find("config");
  SM_CHECK(it != fx.metadata.end(), path << ": no 'config' in the metadata");
  nlohmann::json cfg = nlohmann::json::parse(it->second);
  std::printf("golden fixture %s (seed %s, torch %s), device %s\n", path.c_str(), fx.metadata["seed"].c_str(),
              fx.metadata["torch"].c_str(), device_name(dev));

  DsntNetConfig nc;
  nc.backbone.depth = 0;
  nc.backbone.block = BlockType::Basic;
  nc.backbone.blocks = cfg.at("blocks").get<std::vector<int64_t>>();
  nc.backbone.widths = cfg.at("widths").get<std::vector<int64_t>>();
  // stem_width 0 means widths[0]; DsntNet checks the config (an empty or absurd "widths") first.
  nc.backbone.in_channels = cfg.at("in_channels");
  nc.backbone.output_stride = cfg.at("output_stride");
  nc.landmarks = cfg.at("landmarks");
  const double sigma = cfg.at("sigma"), lambda = cfg.at("lambda"), lr = cfg.at("lr");
  const int steps = cfg.at("adam_steps");

  Rng rng(0);
  DsntNet net(nc, rng);
  weights_assign(state_dict_from(fx, "w."), path + " (w.*)", module_named_tensors(net));

  const Tensor target = need(fx, "target", path).to(dev);
  const Tensor mask = need(fx, "mask", path).to(dev);
  const Tolerances tol = dev == Device::CUDA ? kTolCuda : Tolerances{};
  Checker ck;
  for (const auto& [name, t] : net.state_dict()) ck.compare("loaded " + name, t.value(), need(fx, "w." + name, path), 0.0, true);
  std::printf("%s weights loaded by name (%zu tensors)\n", ck.failures ? "FAIL" : "ok  ", net.state_dict().size());
  net.to_device(dev);  // loaded on the host, then every parameter and buffer moves
  // One forward/backward pass in training mode.
  net.train();
  Var x(need(fx, "input", path).clone().to(dev), true, "input");
  DsntOutput out = net.forward_all(x);
  Var loss = dsnt_loss(out, target, mask, sigma, lambda);
  backward(loss);
  ck.compare("heatmaps", out.heatmaps.value(), need(fx, "out.heatmaps", path), tol.forward);
  ck.compare("coords", out.coords.value(), need(fx, "out.coords", path), tol.forward);
  ck.compare("loss", loss.value(), need(fx, "out.loss", path), tol.loss);
  for (const auto& [name, p] : net.named_parameters()) ck.compare("grad " + name, p.grad(), need(fx, "grad." + name, path), tol.grad, true);
  ck.compare("grad input", x.grad(), need(fx, "grad.input", path), tol.grad);
  std::printf("%s every parameter gradient (%zu tensors)\n", ck.failures ? "FAIL" : "ok  ", net.named_parameters().size());

  // 5 Adam steps.
  ParameterBuffer params(net);
  AdamConfig ac;
  ac.lr = lr;
  Adam adam(params, ac);
  std::vector<double> losses;
  Var input(need(fx, "input", path).clone().to(dev));
  for (int s = 0; s < steps; ++s) {
    adam.zero_grad();
    Var l = dsnt_loss(net.forward_all(input), target, mask, sigma, lambda);
    backward(l);
    adam.step();
    losses.push_back(l.value().item());
  }
  std::vector<float> lf(losses.begin(), losses.end());
  ck.compare("adam losses (5 steps)", Tensor::from_vector({int64_t(lf.size())}, lf), need(fx, "adam.losses", path), tol.adam_loss);
  int before = ck.failures;
  for (const auto& [name, t] : net.state_dict()) ck.compare("final " + name, t.value(), need(fx, "final." + name, path), tol.final_weights, true);
  std::printf("%s final weights and BN statistics (%zu tensors)\n", ck.failures > before ? "FAIL" : "ok  ", net.state_dict().size());
  std::printf("golden_check: %d of %d comparisons failed\n", ck.failures, ck.checks);
  return ck.failures == 0 ? 0 : 1;
}

// --device cuda: strict float32 and deterministic cuDNN; fails clearly without CUDA or a GPU.
Device golden_device(const std::string& name) {
  const Device dev = sm::device_select(name, "golden_check");
  if (dev == Device::CUDA) {
    device_backend().strict_mode_set(true);
    device_backend().deterministic_mode_set(true);
    std::printf("CUDA device: %s, strict float32, deterministic\n", device_backend().describe().c_str());
  }
  return dev;
}

}  // namespace

int main(int argc, char** argv) {
  const bool with_device = argc == 4 && std::string(argv[2]) == "--device";
  if (argc != 2 && !with_device) {
    std::fprintf(stderr,
                 "usage: golden_check FIXTURE.safetensors [--device cpu|cuda]   (make one: tests/golden/make_golden.py "
                 "--seed S --out FILE)\n");
    return 2;
  }
  try {
    return golden_run(argv[1], golden_device(with_device ? argv[3] : "cpu"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "golden_check: error: %s\n", e.what());
    return 1;
  }
}
