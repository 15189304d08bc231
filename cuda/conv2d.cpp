// 2-D convolution through cuDNN (CPU twin: layers/conv2d.cpp). One plan per shape and math mode
// caches the descriptors and the three algorithms: in deterministic mode cuDNN's heuristic order
// (cudnnGet*_v7), restricted to algorithms it reports deterministic, so the choice is fixed for
// a given GPU and cuDNN; otherwise measured with cudnnFind*Ex (like torch.backends.cudnn.benchmark).
// Workspace and Find scratch come from the caching allocator. Host code only.
#include <climits>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "cuda/context.h"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

namespace {

constexpr size_t kWorkspaceLimit = size_t(1) << 30;  // 1 GiB: algorithms needing more are skipped

struct ConvKey {
  int64_t v[13];
  bool tf32, deterministic;
  bool operator==(const ConvKey& o) const {
    return std::memcmp(v, o.v, sizeof(v)) == 0 && tf32 == o.tf32 && deterministic == o.deterministic;
  }
};
struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    size_t h = size_t(k.tf32) * 31 + size_t(k.deterministic);
    for (int64_t x : k.v) h = h * 1000003u ^ std::hash<int64_t>()(x);
    return h;
  }
};

struct Algo {
  int algo = -1;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, b = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool strict = false, deterministic = true;
  Algo fwd, bwd_data, bwd_filter;  // algo == -1: not chosen yet
  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (b) cudnnDestroyTensorDescriptor(b);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

std::mutex g_mu;
std::unordered_map<ConvKey, std::unique_ptr<ConvPlan>, ConvKeyHash>& plans() {
  static auto* m = new std::unordered_map<ConvKey, std::unique_ptr<ConvPlan>, ConvKeyHash>();
  return *m;
}

int to_int(const char* what, int64_t v) {
  SM_CHECK(v > 0 && v < INT_MAX, "conv2d (CUDA): " << what << " = " << v << " is out of cuDNN's range");
  return int(v);
}

void conv_shape_check(const ConvShape& cs) {
  SM_CHECK(cs.n > 0 && cs.c > 0 && cs.h > 0 && cs.w > 0 && cs.k > 0 && cs.kh > 0 && cs.kw > 0,
           "conv2d (CUDA): empty shape x (" << cs.n << ", " << cs.c << ", " << cs.h << ", " << cs.w << "), weight ("
                                            << cs.k << ", " << cs.c << ", " << cs.kh << ", " << cs.kw << ")");
  SM_CHECK(cs.stride_h > 0 && cs.stride_w > 0 && cs.dil_h > 0 && cs.dil_w > 0 && cs.pad_h >= 0 && cs.pad_w >= 0,
           "conv2d (CUDA): stride and dilation must be > 0, padding >= 0");
  SM_CHECK(cs.out_h() > 0 && cs.out_w() > 0, "conv2d (CUDA): kernel larger than the padded input ("
                                                 << cs.h << "x" << cs.w << ", kernel " << cs.kh << "x" << cs.kw << ")");
  SM_CHECK(cs.n * cs.c * cs.h * cs.w < INT_MAX && cs.n * cs.k * cs.out_h() * cs.out_w() < INT_MAX,
           "conv2d (CUDA): tensors over 2^31 elements; split the batch");
}

// The math type algorithms are chosen under. TF32 needs CUDNN_TENSOR_OP_MATH: with
// CUDNN_DEFAULT_MATH, cuDNN 9's measured choice on an H100 (8x64x32x32, 3x3) was implicit GEMM
// with FMA-level error (4e-7) in every direction; with TENSOR_OP it took tensor-core kernels
// (error 2.8e-4, TF32's 10-bit mantissa). The choice's own reported math type is used to run.
cudnnMathType_t base_math(bool strict) { return strict ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH; }

// Picks the first usable result: succeeded, fits the workspace limit, deterministic when asked,
// never a conversion to half precision, no tensor-core math in strict mode.
template <class Perf> Algo algo_pick(const char* dir, const Perf* perf, int count, bool deterministic, bool strict) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > kWorkspaceLimit) continue;
    if (deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
    if (r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // never down-convert to fp16
    if (strict && r.mathType == CUDNN_TENSOR_OP_MATH) continue;
    Algo a;
    a.algo = int(r.algo);
    a.workspace = r.memory;
    a.math = strict ? CUDNN_FMA_MATH : r.mathType;
    return a;
  }
  SM_FAIL("conv2d (CUDA): cuDNN offers no usable " << dir << " algorithm for this shape"
                                                   << (deterministic ? " in deterministic mode (try it off)" : ""));
}

ConvPlan& plan_get(const ConvShape& cs) {
  conv_shape_check(cs);
  const bool strict = !tf32_active(), det = deterministic_mode();
  ConvKey key{{cs.n, cs.c, cs.h, cs.w, cs.k, cs.kh, cs.kw, cs.stride_h, cs.stride_w, cs.pad_h, cs.pad_w, cs.dil_h, cs.dil_w},
              !strict, det};
  std::lock_guard<std::mutex> lock(g_mu);
  auto& m = plans();
  auto it = m.find(key);
  if (it != m.end()) return *it->second;
  auto p = std::make_unique<ConvPlan>();
  p->strict = strict;
  p->deterministic = det;
  SM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  SM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  SM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->b));
  SM_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  SM_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  SM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, to_int("N", cs.n),
                                            to_int("C", cs.c), to_int("H", cs.h), to_int("W", cs.w)));
  SM_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, to_int("K", cs.k),
                                            to_int("C", cs.c), to_int("kh", cs.kh), to_int("kw", cs.kw)));
  SM_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, int(cs.pad_h), int(cs.pad_w), int(cs.stride_h),
                                                 int(cs.stride_w), int(cs.dil_h), int(cs.dil_w),
                                                 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, base_math(strict)));
  int n = 0, c = 0, h = 0, w = 0;
  SM_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
  SM_CHECK(n == cs.n && c == cs.k && h == cs.out_h() && w == cs.out_w(),
           "conv2d (CUDA): cuDNN's output shape (" << n << ", " << c << ", " << h << ", " << w << ") differs from ours ("
                                                   << cs.n << ", " << cs.k << ", " << cs.out_h() << ", " << cs.out_w() << ")");
  SM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  SM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, c, 1, 1));
  ConvPlan& ref = *p;
  m.emplace(key, std::move(p));
  return ref;
}

constexpr int kMaxAlgos = 16;

void fwd_choose(ConvPlan& p, cudnnHandle_t h, const float* x, const float* wt, float* y) {
  cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, base_math(p.strict)));
  if (p.deterministic) {
    SM_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, kMaxAlgos, &count, perf));
  } else {
    DeviceBuffer ws(kWorkspaceLimit);
    SM_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, p.x, x, p.w, wt, p.conv, p.y, y, kMaxAlgos, &count, perf,
                                                          ws.get(), kWorkspaceLimit));
  }
  p.fwd = algo_pick("forward", perf, count, p.deterministic, p.strict);
}

// Backward algorithms, each chosen on first need (a stem conv never needs backward-data, and its
// weight pointer may then be null).
void bwd_data_choose(ConvPlan& p, cudnnHandle_t h, const float* wt, const float* dy, size_t x_bytes) {
  cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, base_math(p.strict)));
  if (p.deterministic) {
    SM_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, kMaxAlgos, &count, perf));
  } else {
    // Find*Ex writes its output: a scratch dx, since backward accumulates into the real one.
    DeviceBuffer ws(kWorkspaceLimit), dx(x_bytes);
    SM_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, wt, p.y, dy, p.conv, p.x, dx.as<float>(),
                                                               kMaxAlgos, &count, perf, ws.get(), kWorkspaceLimit));
  }
  p.bwd_data = algo_pick("backward-data", perf, count, p.deterministic, p.strict);
}

void bwd_filter_choose(ConvPlan& p, cudnnHandle_t h, const float* x, const float* dy, size_t w_bytes) {
  cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
  int count = 0;
  SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, base_math(p.strict)));
  if (p.deterministic) {
    SM_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, kMaxAlgos, &count, perf));
  } else {
    DeviceBuffer ws(kWorkspaceLimit), dw(w_bytes);
    SM_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, x, p.y, dy, p.conv, p.w, dw.as<float>(),
                                                                 kMaxAlgos, &count, perf, ws.get(), kWorkspaceLimit));
  }
  p.bwd_filter = algo_pick("backward-filter", perf, count, p.deterministic, p.strict);
}

}  // namespace

void conv2d_forward(const ConvShape& cs, const float* x, const float* weight, const float* bias, float* y, Stream s) {
  ConvPlan& p = plan_get(cs);
  SM_CHECK(x && weight && y, "conv2d_forward (CUDA): null x, weight or y");
  cudaStream_t st = stream_resolve(s);
  cudnnHandle_t h = cudnn_get(st);
  if (p.fwd.algo < 0) fwd_choose(p, h, x, weight, y);
  DeviceBuffer ws(p.fwd.workspace);
  const float one = 1.f, zero = 0.f;
  SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.fwd.math));
  SM_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.x, x, p.w, weight, p.conv, cudnnConvolutionFwdAlgo_t(p.fwd.algo),
                                         ws.get(), p.fwd.workspace, &zero, p.y, y));
  if (bias) SM_CUDNN_CHECK(cudnnAddTensor(h, &one, p.b, bias, &one, p.y, y));
}

void conv2d_backward(const ConvShape& cs, const float* x, const float* weight, const float* dy, float* dx,
                     float* dweight, float* dbias, Stream s) {
  ConvPlan& p = plan_get(cs);
  SM_CHECK(dy && (!dx || weight) && (!dweight || x), "conv2d_backward (CUDA): null input for a requested gradient");
  cudaStream_t st = stream_resolve(s);
  if (dbias) channel_sum_add(cs.n, cs.k, cs.out_h() * cs.out_w(), dy, dbias, st);
  if (!dx && !dweight) return;
  cudnnHandle_t h = cudnn_get(st);
  const float one = 1.f;  // beta = 1: gradients accumulate
  if (dx) {
    if (p.bwd_data.algo < 0) bwd_data_choose(p, h, weight, dy, size_t(cs.n * cs.c * cs.h * cs.w) * sizeof(float));
    DeviceBuffer ws(p.bwd_data.workspace);
    SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.bwd_data.math));
    SM_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.w, weight, p.y, dy, p.conv,
                                                cudnnConvolutionBwdDataAlgo_t(p.bwd_data.algo), ws.get(),
                                                p.bwd_data.workspace, &one, p.x, dx));
  }
  if (dweight) {
    if (p.bwd_filter.algo < 0) bwd_filter_choose(p, h, x, dy, size_t(cs.k * cs.c * cs.kh * cs.kw) * sizeof(float));
    DeviceBuffer ws(p.bwd_filter.workspace);
    SM_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, p.bwd_filter.math));
    SM_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, dy, p.conv,
                                                  cudnnConvolutionBwdFilterAlgo_t(p.bwd_filter.algo), ws.get(),
                                                  p.bwd_filter.workspace, &one, p.w, dweight));
  }
}

namespace {
const char* math_name(const Algo& a) {
  if (a.algo < 0) return "";
  switch (a.math) {
    case CUDNN_FMA_MATH: return "fma";
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor_op";
    default: return "other";
  }
}
}  // namespace

ConvAlgoChoice conv_algo_chosen(const ConvShape& cs) {
  ConvPlan& p = plan_get(cs);
  std::lock_guard<std::mutex> lock(g_mu);
  ConvAlgoChoice c;
  c.fwd = p.fwd.algo, c.bwd_data = p.bwd_data.algo, c.bwd_filter = p.bwd_filter.algo;
  c.fwd_math = math_name(p.fwd), c.bwd_data_math = math_name(p.bwd_data), c.bwd_filter_math = math_name(p.bwd_filter);
  return c;
}

size_t conv_algo_cache_size() {
  std::lock_guard<std::mutex> lock(g_mu);
  return plans().size();
}

void conv_algo_cache_clear() {
  std::lock_guard<std::mutex> lock(g_mu);
  plans().clear();
}

}  // namespace sm::cuda
