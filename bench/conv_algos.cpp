// conv_algos: times each CPU algorithm for the 3×3 stride-1 convolutions of the benchmark
// networks (ResNet-18 widths; coarse/detect at 256×256 and refine at 128×128 inputs), forward,
// input gradient and weight gradient separately: the direct im2col GEMM and Winograd F(2,3) and
// F(4,3) (tensor/kernels/cpu/winograd.h). The Auto choice in winograd_tile() follows these
// crossovers. A benchmark, not a test.
//   conv_algos [--threads N] [--reps N] [--batch N (0: 1, 8 and 32)]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "tensor/kernels/context.h"
#include "tensor/kernels/conv2d.h"
#include "tensor/rng.h"

using namespace sm;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F> double median_ms(int reps, F f) {
  f();  // warm-up
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_ms();
    f();
    t.push_back(now_ms() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"conv_algos: direct vs Winograd per 3x3 stride-1 conv shape (CPU, float32)"};
  int threads = 2, reps = 5;
  int64_t batch = 0;
  app.add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 256));
  app.add_option("--reps", reps, "timed repetitions (median)")->check(CLI::Range(1, 1000));
  app.add_option("--batch", batch, "batch size (0: 1 and 8 at 256x256-input sizes, 32 at refine's)")->check(CLI::Range(0, 1024));
  CLI11_PARSE(app, argc, argv);

  struct Shape {
    int64_t n, c, hw, k;
  };
  std::vector<Shape> shapes;
  const int64_t stages[][3] = {{64, 64, 64}, {128, 32, 128}, {256, 16, 256}, {256, 16, 512}, {512, 16, 512}};
  for (int64_t n : batch ? std::vector<int64_t>{batch} : std::vector<int64_t>{1, 8})
    for (const auto& s : stages) shapes.push_back({n, s[0], s[1], s[2]});
  if (!batch) {  // refine: 128×128 inputs, batch 32 (stage 4 at 8×8)
    const int64_t refine[][3] = {{64, 32, 64}, {128, 16, 128}, {256, 8, 256}, {512, 8, 512}};
    for (const auto& s : refine) shapes.push_back({32, s[0], s[1], s[2]});
    // The `small` preset's undilated stages (models/nets/spine_model.cpp): step 1 on a 256-pixel
    // film (batch 1), the refinement of 17 crops of 64 pixels (batch 17).
    const int64_t small[][4] = {{1, 16, 64, 16}, {1, 32, 32, 32}, {17, 16, 16, 16}, {17, 32, 8, 32}};
    for (const auto& s : small) shapes.push_back({s[0], s[1], s[2], s[3]});
  }

  std::printf("%-22s %-10s %9s %9s %9s\n", "N C HxW K", "algorithm", "fwd ms", "dx ms", "dW ms");
  Rng rng(1);
  for (const Shape& sh : shapes) {
    kernels::Conv2dGeometry g;
    g.n = sh.n, g.c = sh.c, g.h = sh.hw, g.w = sh.hw, g.k = sh.k, g.kh = 3, g.kw = 3, g.pad_h = 1, g.pad_w = 1;
    Tensor x = Tensor::empty({g.n, g.c, g.h, g.w}), w = Tensor::empty({g.k, g.c, 3, 3});
    Tensor dy = Tensor::empty({g.n, g.k, g.out_h(), g.out_w()});
    tensor_fill_uniform(x, rng, 0, 1);
    tensor_fill_uniform(w, rng, -0.05, 0.05);
    tensor_fill_uniform(dy, rng, -1, 1);
    Tensor y = Tensor::empty(dy.shape()), dx = Tensor::zeros(x.shape()), dw = Tensor::zeros(w.shape());
    for (ConvAlgo algo : {ConvAlgo::Direct, ConvAlgo::WinogradF2, ConvAlgo::WinogradF4}) {
      ExecContext ctx;
      ctx.threads = threads;
      ctx.conv_algo = algo;
      ExecScope scope(ctx);
      const double f = median_ms(reps, [&] { kernels::conv2d_forward(g, x, w, Tensor(), y); });
      const double d = median_ms(reps, [&] { kernels::conv2d_backward(g, x, w, dy, &dx, nullptr, nullptr); });
      const double gw = median_ms(reps, [&] { kernels::conv2d_backward(g, x, w, dy, nullptr, &dw, nullptr); });
      char label[64];
      std::snprintf(label, sizeof label, "%ld %ld %ldx%ld %ld", long(g.n), long(g.c), long(g.h), long(g.w), long(g.k));
      const char* name = algo == ConvAlgo::Direct ? "direct" : algo == ConvAlgo::WinogradF2 ? "F(2,3)" : "F(4,3)";
      std::printf("%-22s %-10s %9.2f %9.2f %9.2f\n", label, name, f, d, gw);
      std::fflush(stdout);
    }
  }
  return 0;
}
