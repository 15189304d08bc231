// Tensor storage, views and copies (see tensor.h).
#include "tensor/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "tensor/device_backend.h"

namespace sm {

size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }
const char* dtype_name(DType t) { return t == DType::F64 ? "F64" : "F32"; }
const char* device_name(Device d) { return d == Device::CUDA ? "CUDA" : "CPU"; }

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ",";
  os << ")";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

static Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

Storage::Storage(size_t n, Device dev) : bytes(n), device(dev) {
  size_t padded = (n + 63) / 64 * 64;
  if (padded == 0) padded = 64;
  if (dev == Device::CPU) {
    data = std::aligned_alloc(64, padded);
    SM_CHECK(data, "out of host memory allocating " << n << " bytes");
  } else {
    data = device_backend().alloc(padded);
  }
}

Storage::~Storage() {
  if (device == Device::CPU) std::free(data);
  else device_backend().free(data, (bytes + 63) / 64 * 64);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) SM_CHECK(d >= 0, "negative dimension in shape " << shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& v) {
  SM_CHECK(int64_t(v.size()) == shape_numel(shape), "from_vector: " << v.size() << " values for shape " << shape_str(shape));
  Tensor t = empty(shape, DType::F32);
  std::memcpy(t.f32(), v.data(), v.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<double>& v) {
  SM_CHECK(int64_t(v.size()) == shape_numel(shape), "from_vector: " << v.size() << " values for shape " << shape_str(shape));
  Tensor t = empty(shape, DType::F64);
  std::memcpy(t.f64(), v.data(), v.size() * sizeof(double));
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  if (d < 0) d += n;
  SM_CHECK(d >= 0 && d < n, "size(" << d << ") of a tensor with shape " << shape_str(shape_));
  return shape_[size_t(d)];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::raw_data() const {
  SM_CHECK(defined(), "raw_data() of an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * int64_t(dtype_size(dtype_));
}

Tensor Tensor::view(const Shape& shape) const {
  SM_CHECK(defined(), "view of an undefined tensor");
  SM_CHECK(is_contiguous(), "view needs a contiguous tensor, got strides " << shape_str(strides_));
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SM_CHECK(infer < 0, "view: more than one -1 in " << shape_str(shape));
      infer = int(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SM_CHECK(known > 0 && numel() % known == 0, "view: cannot infer -1 in " << shape_str(shape) << " for " << numel() << " elements");
    s[size_t(infer)] = numel() / known;
  }
  SM_CHECK(shape_numel(s) == numel(), "view: shape " << shape_str(shape) << " does not match " << shape_str(shape_));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  SM_CHECK(dim() >= 1, "slice of a 0-d tensor");
  SM_CHECK(0 <= begin && begin <= end && end <= shape_[0],
           "slice [" << begin << ", " << end << ") out of range for shape " << shape_str(shape_));
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.offset_ = offset_ + begin * strides_[0];
  return t;
}

Tensor Tensor::select(int64_t index) const {
  Tensor t = slice(index, index + 1);
  Shape s(shape_.begin() + 1, shape_.end());
  t.shape_ = s;
  t.strides_ = Shape(strides_.begin() + 1, strides_.end());
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device_);
  t.copy_(*this);
  return t;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device_);
  t.copy_(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  Tensor t = empty(shape_, dtype_, device);
  t.copy_(*this);
  return t;
}

void Tensor::copy_(const Tensor& src) {
  SM_CHECK(defined() && src.defined(), "copy_ with an undefined tensor");
  SM_CHECK(numel() == src.numel(), "copy_: " << shape_str(src.shape_) << " into " << shape_str(shape_));
  SM_CHECK(is_contiguous() && src.is_contiguous(), "copy_ needs contiguous tensors");
  if (device_ == Device::CPU && src.device_ == Device::CPU) {
    if (dtype_ == src.dtype_) {
      std::memmove(raw_data(), src.raw_data(), size_t(numel()) * dtype_size(dtype_));
    } else if (dtype_ == DType::F32) {
      float* d = f32();
      const double* s = src.f64();
      for (int64_t i = 0; i < numel(); ++i) d[i] = float(s[i]);
    } else {
      double* d = f64();
      const float* s = src.f32();
      for (int64_t i = 0; i < numel(); ++i) d[i] = s[i];
    }
    return;
  }
  // Host <-> device or device <-> device: the backend copies bytes; dtype must match.
  SM_CHECK(dtype_ == src.dtype_, "copy_ between devices needs the same dtype");
  device_backend().copy(raw_data(), device_, src.raw_data(), src.device_, size_t(numel()) * dtype_size(dtype_));
}

void Tensor::fill_(double value) {
  SM_CHECK(defined(), "fill_ of an undefined tensor");
  if (device_ == Device::CUDA) {
    device_backend().fill(*this, value);
    return;
  }
  SM_CHECK(is_contiguous(), "fill_ needs a contiguous tensor");
  dispatch_float(dtype_, [&](auto zero) {
    using T = decltype(zero);
    T* p = data<T>();
    const T v = T(value);
    const int64_t n = numel();
    // Gradient buffers of a training step are tens of MB: fill them with every thread.
#pragma omp parallel for schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  });
}

double Tensor::item() const {
  SM_CHECK(numel() == 1, "item() of a tensor with shape " << shape_str(shape_));
  Tensor c = to(Device::CPU);
  return c.dtype_ == DType::F64 ? c.f64()[0] : double(c.f32()[0]);
}

double Tensor::at(const std::vector<int64_t>& index) const {
  SM_CHECK(int64_t(index.size()) == dim(), "at(): " << index.size() << " indices for shape " << shape_str(shape_));
  Tensor c = to(Device::CPU);
  int64_t off = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    SM_CHECK(index[i] >= 0 && index[i] < shape_[i], "at(): index out of range for shape " << shape_str(shape_));
    off += index[i] * strides_[i];
  }
  const char* base = static_cast<const char*>(c.storage_->data);
  int64_t e = c.offset_ + off;
  return dtype_ == DType::F64 ? reinterpret_cast<const double*>(base)[e] : double(reinterpret_cast<const float*>(base)[e]);
}

std::vector<float> Tensor::to_vector_f32() const {
  Tensor c = to(Device::CPU).contiguous().to(DType::F32);
  return std::vector<float>(c.f32(), c.f32() + c.numel());
}

std::vector<double> Tensor::to_vector_f64() const {
  Tensor c = to(Device::CPU).contiguous().to(DType::F64);
  return std::vector<double>(c.f64(), c.f64() + c.numel());
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return std::string("Tensor(") + dtype_name(dtype_) + ", " + device_name(device_) + ", " + shape_str(shape_) + ")";
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  SM_CHECK(a.defined() && b.defined(), op << ": undefined tensor");
  SM_CHECK(a.shape() == b.shape(), op << ": shapes differ, " << shape_str(a.shape()) << " vs " << shape_str(b.shape()));
  SM_CHECK(a.dtype() == b.dtype(), op << ": dtypes differ, " << dtype_name(a.dtype()) << " vs " << dtype_name(b.dtype()));
}

void check_cpu(const char* op, const Tensor& t) {
  SM_CHECK(t.device() == Device::CPU, op << ": this op has no CUDA version yet (tensor on " << device_name(t.device()) << ")");
}

}  // namespace sm
