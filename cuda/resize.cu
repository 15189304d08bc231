// Bilinear resize, align_corners=False (CPU twin layers/resize.cpp, PyTorch's
// upsample_bilinear2d). The taps of each axis come from tensor/bilinear_taps.h, as on the CPU, and
// are uploaded once per (input, output) size pair, then kept on the device for the life of
// the process (a network resizes between a handful of sizes); backward gathers per input cell
// through the transposed taps (CSR), so it needs no atomics.
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda/kernels.cuh"
#include "cuda/ops_cuda.h"
#include "tensor/bilinear_taps.h"

namespace sm::cuda {

namespace {

// Ints: i0[out], i1[out], start[in + 1], src[nnz]. Floats: w0[out], w1[out], wt[nnz].
struct AxisTaps {
  std::vector<int32_t> ints;
  std::vector<float> floats;
  int64_t in = 0, out = 0, nnz = 0;
};

AxisTaps taps_make(int64_t in, int64_t out) {
  AxisTaps t;
  t.in = in, t.out = out;
  const BilinearTaps b = bilinear_taps(in, out);
  const std::vector<int32_t> i0(b.i0.begin(), b.i0.end()), i1(b.i1.begin(), b.i1.end());
  const std::vector<float> w0(b.w0.begin(), b.w0.end()), w1(b.w1.begin(), b.w1.end());
  // Transpose: for each input index the (output, weight) pairs, outputs ascending.
  std::vector<std::vector<std::pair<int32_t, double>>> rows(static_cast<size_t>(in));
  for (int64_t o = 0; o < out; ++o) {
    rows[size_t(i0[size_t(o)])].push_back({int32_t(o), double(w0[size_t(o)])});
    rows[size_t(i1[size_t(o)])].push_back({int32_t(o), double(w1[size_t(o)])});
  }
  std::vector<int32_t> start(size_t(in) + 1, 0), src;
  std::vector<float> wt;
  for (int64_t i = 0; i < in; ++i) {
    for (auto& p : rows[size_t(i)]) src.push_back(p.first), wt.push_back(float(p.second));
    start[size_t(i) + 1] = int32_t(src.size());
  }
  t.nnz = int64_t(src.size());
  t.ints = i0;
  t.ints.insert(t.ints.end(), i1.begin(), i1.end());
  t.ints.insert(t.ints.end(), start.begin(), start.end());
  t.ints.insert(t.ints.end(), src.begin(), src.end());
  t.floats = w0;
  t.floats.insert(t.floats.end(), w1.begin(), w1.end());
  t.floats.insert(t.floats.end(), wt.begin(), wt.end());
  return t;
}

struct DeviceTaps {
  const int32_t *i0, *i1, *start, *src;
  const float *w0, *w1, *wt;
};

struct UploadedTaps {
  DeviceBuffer ints, floats;
  DeviceTaps d{};
};

// The device taps of one axis resized from `in` to `out`: made and uploaded on first use (the
// upload waits for the stream once, so the host vectors may go), then shared by every later call
// on any stream. The cache is leaked on purpose, like the allocator it draws from.
DeviceTaps taps_get(int64_t in, int64_t out, cudaStream_t st) {
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<int64_t, int64_t>, std::unique_ptr<UploadedTaps>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find({in, out});
  if (it != cache->end()) return it->second->d;
  const AxisTaps t = taps_make(in, out);
  auto u = std::make_unique<UploadedTaps>();
  u->ints = DeviceBuffer(t.ints.size() * sizeof(int32_t));
  u->floats = DeviceBuffer(t.floats.size() * sizeof(float));
  SM_CUDA_CHECK(cudaMemcpyAsync(u->ints.get(), t.ints.data(), t.ints.size() * sizeof(int32_t), cudaMemcpyHostToDevice, st));
  SM_CUDA_CHECK(cudaMemcpyAsync(u->floats.get(), t.floats.data(), t.floats.size() * sizeof(float), cudaMemcpyHostToDevice, st));
  SM_CUDA_CHECK(cudaStreamSynchronize(st));
  const int32_t* ip = u->ints.as<int32_t>();
  const float* fp = u->floats.as<float>();
  u->d.i0 = ip, u->d.i1 = ip + t.out, u->d.start = ip + 2 * t.out, u->d.src = ip + 2 * t.out + t.in + 1;
  u->d.w0 = fp, u->d.w1 = fp + t.out, u->d.wt = fp + 2 * t.out;
  const DeviceTaps d = u->d;
  cache->emplace(std::make_pair(in, out), std::move(u));
  return d;
}

__global__ void resize_forward_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, DeviceTaps th,
                                      DeviceTaps tw, const float* x, float* y) {
  const int64_t total = planes * oh * ow;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
    const float* xp = x + plane * h * w;
    const int64_t y0 = th.i0[oy], y1 = th.i1[oy], x0 = tw.i0[ox], x1 = tw.i1[ox];
    const float a0 = th.w0[oy], a1 = th.w1[oy], b0 = tw.w0[ox], b1 = tw.w1[ox];
    y[i] = a0 * (b0 * xp[y0 * w + x0] + b1 * xp[y0 * w + x1]) + a1 * (b0 * xp[y1 * w + x0] + b1 * xp[y1 * w + x1]);
  }
}

__global__ void resize_backward_kernel(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, DeviceTaps th,
                                       DeviceTaps tw, const float* dy, float* dx) {
  const int64_t total = planes * h * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ix = i % w, iy = (i / w) % h, plane = i / (h * w);
    const float* gp = dy + plane * oh * ow;
    float acc = 0.f;
    for (int32_t a = th.start[iy]; a < th.start[iy + 1]; ++a) {
      const int64_t oy = th.src[a];
      float row = 0.f;
      for (int32_t b = tw.start[ix]; b < tw.start[ix + 1]; ++b) row += tw.wt[b] * gp[oy * ow + tw.src[b]];
      acc += th.wt[a] * row;
    }
    dx[i] += acc;
  }
}

void resize_check(const char* op, int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  SM_CHECK(n > 0 && c > 0 && h > 0 && w > 0 && oh > 0 && ow > 0,
           op << ": empty shape, x (" << n << ", " << c << ", " << h << ", " << w << ") to " << oh << "x" << ow);
  SM_CHECK(h < (1 << 30) && w < (1 << 30) && oh < (1 << 30) && ow < (1 << 30), op << ": sizes too large");
}

}  // namespace

void resize_bilinear_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t out_h, int64_t out_w, const float* x,
                             float* y, Stream s) {
  resize_check("resize_bilinear_forward (CUDA)", n, c, h, w, out_h, out_w);
  SM_CHECK(x && y, "resize_bilinear_forward (CUDA): null x or y");
  cudaStream_t st = stream_resolve(s);
  const DeviceTaps th = taps_get(h, out_h, st), tw = taps_get(w, out_w, st);
  const int64_t total = n * c * out_h * out_w;
  resize_forward_kernel<<<grid_for(total), kThreads, 0, st>>>(n * c, h, w, out_h, out_w, th, tw, x, y);
  SM_LAUNCH_CHECK("resize_forward_kernel");
}

void resize_bilinear_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                              const float* dy, float* dx, Stream s) {
  resize_check("resize_bilinear_backward (CUDA)", n, c, h, w, out_h, out_w);
  SM_CHECK(dy, "resize_bilinear_backward (CUDA): null dy");
  if (!dx) return;
  cudaStream_t st = stream_resolve(s);
  const DeviceTaps th = taps_get(h, out_h, st), tw = taps_get(w, out_w, st);
  const int64_t total = n * c * h * w;
  resize_backward_kernel<<<grid_for(total), kThreads, 0, st>>>(n * c, h, w, out_h, out_w, th, tw, dy, dx);
  SM_LAUNCH_CHECK("resize_backward_kernel");
}

}  // namespace sm::cuda
