// The CUDA DeviceBackend: device detection that never crashes without a driver, lazily created
// stream/cuBLAS/cuDNN handles, copies, fill, and the TF32/strict/deterministic switches.
#include "cuda/backend.h"

#include <atomic>
#include <sstream>

#include "cuda/context.h"
#include "cuda/ops_cuda.h"

namespace sm::cuda {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}

namespace {

std::atomic<bool> g_strict{false};
std::atomic<bool> g_deterministic{true};

// Probed once: the runtime returns an error (no driver, no device) instead of crashing.
struct Probe {
  bool present = false;
  std::string description;
  int cc_major = 0;
  int count = 0;
};

const Probe& probe_get() {
  static const Probe probe = [] {
    Probe p;
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
      (void)cudaGetLastError();
      p.description = std::string("no CUDA device (") + (e != cudaSuccess ? cudaGetErrorString(e) : "device count 0") + ")";
      return p;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      (void)cudaGetLastError();
      p.description = "no CUDA device (cudaGetDeviceProperties failed)";
      return p;
    }
    p.present = true;
    p.count = count;
    p.cc_major = prop.major;
    std::ostringstream os;
    os.setf(std::ios::fixed);
    os.precision(1);
    os << prop.name << " (sm_" << prop.major << prop.minor << ", " << prop.multiProcessorCount << " SMs, "
       << double(prop.totalGlobalMem) / double(1ull << 30) << " GiB)";
    p.description = os.str();
    return p;
  }();
  return probe;
}

// Stream and library handles, created on first use; never destroyed (see backend_get).
struct Handles {
  std::mutex mu;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
};
Handles& handles() {
  static Handles* h = new Handles();
  return *h;
}

void require_device(const char* what) {
  SM_CHECK(probe_get().present, what << ": " << probe_get().description
                                     << "; run on a machine with an NVIDIA GPU or use the CPU (--device cpu)");
}

class CudaBackend final : public DeviceBackend {
 public:
  const char* name() const override { return "cuda"; }
  bool available() const override { return probe_get().present; }

  void* alloc(size_t bytes) override {
    require_device("CUDA allocation");
    return allocator_get().alloc(bytes);
  }
  void free(void* p, size_t) override { allocator_get().free(p); }

  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override {
    if (bytes == 0) return;
    require_device("CUDA copy");
    cudaStream_t s = stream_get();
    // cudaMemcpyDefault: unified addressing tells host from device pointers.
    SM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
    // A host side must be complete (and pageable memory reusable) when copy returns.
    if (dst_device == Device::CPU || src_device == Device::CPU) SM_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  void fill(Tensor& t, double value) override {
    SM_CHECK(t.device() == Device::CUDA, "CUDA fill of a tensor on " << device_name(t.device()));
    SM_CHECK(t.is_contiguous(), "CUDA fill needs a contiguous tensor, got " << t.str());
    if (t.numel() == 0) return;
    if (t.dtype() == DType::F32) fill_f32(static_cast<float*>(t.raw_data()), t.numel(), float(value));
    else fill_f64(static_cast<double*>(t.raw_data()), t.numel(), value);
  }

  std::string describe() const override { return device_describe(); }
  void strict_mode_set(bool on) override { cuda::strict_mode_set(on); }
  bool strict_mode() const override { return cuda::strict_mode(); }
  std::string memory_describe() const override { return cuda::memory_describe(); }
  bool tf32_active() const override { return cuda::tf32_active(); }
  void deterministic_mode_set(bool on) override { cuda::deterministic_mode_set(on); }
  bool deterministic_mode() const override { return cuda::deterministic_mode(); }
  size_t memory_peak_bytes() const override { return memory_stats().peak_in_use; }
  int device_count() const override { return probe_get().count; }
  void device_index_set(int index) override { cuda::device_index_set(index); }
  void* stream_handle() override { return stream_get(); }
  void synchronize() override {
    if (!probe_get().present) return;
    SM_CUDA_CHECK(cudaStreamSynchronize(stream_get()));
  }
};

}  // namespace

DeviceBackend& backend_get() {
  // Leaked on purpose: tensors held by statics are freed after static destructors run.
  static CudaBackend* backend = new CudaBackend();
  return *backend;
}

CachingAllocator& allocator_get() {
  static CachingAllocator* a = new CachingAllocator();  // leaked, as the backend
  return *a;
}

bool device_present() { return probe_get().present; }

void device_index_set(int index) {
  require_device("choosing a GPU");
  SM_CHECK(index >= 0 && index < probe_get().count,
           "GPU " << index << " requested, but this process sees " << probe_get().count << " (CUDA_VISIBLE_DEVICES?)");
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mu);
  int current = 0;
  SM_CUDA_CHECK(cudaGetDevice(&current));
  if (current == index) return;
  // The stream, the handles and the cached blocks belong to the device current when they were
  // made: switching afterwards would mix devices.
  SM_CHECK(!h.stream && !h.cublas && !h.cudnn && memory_stats().device_allocs == 0,
           "GPU " << index << " requested after this process already used GPU " << current
                  << "; the GPU must be chosen before the first CUDA operation");
  SM_CUDA_CHECK(cudaSetDevice(index));
}
std::string device_describe() { return probe_get().description; }
int device_cc_major() { return probe_get().cc_major; }

Stream stream_get() {
  require_device("CUDA stream");
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mu);
  if (!h.stream) SM_CUDA_CHECK(cudaStreamCreateWithFlags(&h.stream, cudaStreamNonBlocking));
  return h.stream;
}

cublasHandle_t cublas_get(cudaStream_t s) {
  Handles& h = handles();
  {
    std::lock_guard<std::mutex> lock(h.mu);
    if (!h.cublas) SM_CUBLAS_CHECK(cublasCreate(&h.cublas));
  }
  SM_CUBLAS_CHECK(cublasSetStream(h.cublas, s));
  SM_CUBLAS_CHECK(cublasSetMathMode(h.cublas, tf32_active() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return h.cublas;
}

cudnnHandle_t cudnn_get(cudaStream_t s) {
  Handles& h = handles();
  {
    std::lock_guard<std::mutex> lock(h.mu);
    if (!h.cudnn) SM_CUDNN_CHECK(cudnnCreate(&h.cudnn));
  }
  SM_CUDNN_CHECK(cudnnSetStream(h.cudnn, s));
  return h.cudnn;
}

void strict_mode_set(bool on) { g_strict = on; }
bool strict_mode() { return g_strict; }
bool tf32_active() { return !g_strict && device_cc_major() >= 8; }
void deterministic_mode_set(bool on) { g_deterministic = on; }
bool deterministic_mode() { return g_deterministic; }

}  // namespace sm::cuda
