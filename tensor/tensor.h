// The tensor: shape, strides, dtype and device plus a shared handle to its storage. Storage is
// contiguous, row-major (images NCHW); views (reshape, batch slices) share it. float32 is the
// working type; float64 exists on the CPU for gradient checks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/check.h"

namespace sm {

enum class DType : uint8_t { F32, F64 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "F32", "F64" (safetensors spelling)
const char* device_name(Device d);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "(8, 64, 32, 32)"
int64_t shape_numel(const Shape& s);

// One allocation. CPU memory is 64-byte aligned; CUDA memory comes from the cuda/ backend.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false)

  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);
  static Tensor from_vector(const Shape& shape, const std::vector<double>& values);
  static Tensor scalar(double value, DType dtype = DType::F32);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_contiguous() const;
  int64_t offset() const { return offset_; }  // in elements
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Typed pointer to the first element; checks the dtype, not the device: on a CUDA tensor it is
  // a device pointer (the kernel dispatchers hand such pointers to cuda/), so host code that
  // dereferences it must know the tensor is on the CPU.
  template <class T> T* data();
  template <class T> const T* data() const;
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  double* f64() { return data<double>(); }
  const double* f64() const { return data<double>(); }
  void* raw_data() const;  // untyped, any device

  // Views share storage. view() needs a contiguous tensor; one dim may be -1.
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const { return contiguous().view(shape); }
  Tensor flatten() const { return view({numel()}); }
  Tensor slice(int64_t begin, int64_t end) const;  // rows [begin, end) of dim 0 (batch slicing)
  Tensor select(int64_t index) const;              // row `index` of dim 0, one dim fewer

  Tensor clone() const;       // contiguous deep copy, same dtype/device
  Tensor contiguous() const;  // *this when already contiguous
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  void copy_(const Tensor& src);  // same shape; converts dtype; any device pair
  void fill_(double value);
  void zero_() { fill_(0.0); }

  double item() const;                      // one-element tensor -> double
  double at(const std::vector<int64_t>& index) const;  // slow element read, for tests
  std::vector<float> to_vector_f32() const;
  std::vector<double> to_vector_f64() const;

  std::string str() const;  // "Tensor(F32, CPU, (2, 3))"

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }

template <class T> T* Tensor::data() {
  SM_CHECK(defined(), "data() of an undefined tensor");
  SM_CHECK(dtype_ == dtype_of<T>(), "tensor is " << dtype_name(dtype_) << ", accessed as " << dtype_name(dtype_of<T>()));
  // Host code reading GPU memory would crash (or read garbage): say so instead. Kernels take
  // device pointers through raw_data().
  SM_CHECK(device_ == Device::CPU, "host access (data()) to a tensor on " << device_name(device_) << ": copy it with to(Device::CPU) first");
  return static_cast<T*>(storage_->data) + offset_;
}
template <class T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }

// Calls f(T{}) with T = float or double according to dtype: one switch for every CPU kernel.
template <class F> decltype(auto) dispatch_float(DType t, F&& f) {
  if (t == DType::F64) return f(double{});
  return f(float{});
}

// Shape checks used by every op: they name the op and both shapes.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_cpu(const char* op, const Tensor& t);

}  // namespace sm
