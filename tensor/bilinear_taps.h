// The taps of bilinear resizing along one axis, align_corners=False (PyTorch's
// upsample_bilinear2d without antialiasing): output index o reads source position
//   s = max(0, (o + 0.5) · in / out − 0.5),  i0 = ⌊s⌋,  i1 = min(i0 + 1, in − 1),  λ = s − i0,
// with weights (1 − λ, λ). One definition for the CPU op (layers/resize.cpp) and the CUDA one
// (cuda/resize.cu, which converts them to int32/float and uploads them), so both read the same
// pixels with the same weights. Plain C++ (no Eigen): nvcc compiles it too.
#pragma once
#include <cstdint>
#include <vector>

namespace sm {

struct BilinearTaps {
  std::vector<int64_t> i0, i1;  // source indices per output index
  std::vector<double> w0, w1;   // their weights, w0 + w1 = 1
};

inline BilinearTaps bilinear_taps(int64_t in, int64_t out) {
  BilinearTaps t;
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    double s = (double(o) + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    const int64_t i0 = int64_t(s);
    const double l = s - double(i0);
    t.i0.push_back(i0);
    t.i1.push_back(i0 < in - 1 ? i0 + 1 : i0);
    t.w0.push_back(1.0 - l);
    t.w1.push_back(l);
  }
  return t;
}

}  // namespace sm
