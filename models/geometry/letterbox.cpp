// Letterbox fit, point mapping and the separable resampler behind it (see letterbox.h).
#include "models/geometry/letterbox.h"

#include <algorithm>
#include <cmath>

#include "tensor/check.h"
#include "tensor/kernels/context.h"

namespace sm {

Letterbox letterbox_fit(int src_width, int src_height, int dst_width, int dst_height) {
  SM_CHECK(src_width > 0 && src_height > 0 && dst_width > 0 && dst_height > 0,
           "letterbox: sizes must be positive, got " << src_width << "x" << src_height << " -> "
                                                     << dst_width << "x" << dst_height);
  Letterbox lb{src_width, src_height, dst_width, dst_height, 1.0, 0.0, 0.0};
  lb.scale = std::min(double(dst_width) / src_width, double(dst_height) / src_height);
  lb.offset_x = 0.5 * (dst_width - lb.scale * src_width);
  lb.offset_y = 0.5 * (dst_height - lb.scale * src_height);
  return lb;
}

Point2 letterbox_forward(const Letterbox& lb, const Point2& p) {
  return {(p[0] + 0.5) * lb.scale + lb.offset_x - 0.5, (p[1] + 0.5) * lb.scale + lb.offset_y - 0.5};
}

Point2 letterbox_inverse(const Letterbox& lb, const Point2& q) {
  return {(q[0] + 0.5 - lb.offset_x) / lb.scale - 0.5, (q[1] + 0.5 - lb.offset_y) / lb.scale - 0.5};
}

namespace {

// Weights of the source samples along one axis for one output sample; `pad` is the weight of
// the area outside the source.
struct AxisTap {
  int first = 0;
  std::vector<double> w;
  double pad = 0.0;
};

// One tap per output index q. Shrinking: the output pixel's footprint [q, q+1] in edge
// coordinates maps to [(q − off)/s, (q + 1 − off)/s] in the source; each source pixel [i, i+1]
// weighs by its overlap (exact area average). Enlarging: linear interpolation at the mapped
// centre, edge pixels extended over the half-pixel border, pad beyond the source.
std::vector<AxisTap> axis_taps(int n_src, int n_dst, double scale, double offset) {
  std::vector<AxisTap> taps(static_cast<size_t>(n_dst));
  for (int q = 0; q < n_dst; ++q) {
    AxisTap& t = taps[size_t(q)];
    if (scale < 1.0) {
      const double a = (q - offset) / scale, b = (q + 1 - offset) / scale, len = b - a;
      const int i0 = std::max(0, int(std::floor(a))), i1 = std::min(n_src - 1, int(std::ceil(b)) - 1);
      t.first = i0;
      double covered = 0;
      for (int i = i0; i <= i1; ++i) {
        double w = (std::min(b, double(i + 1)) - std::max(a, double(i))) / len;
        w = std::max(w, 0.0);
        t.w.push_back(w);
        covered += w;
      }
      t.pad = std::max(0.0, 1.0 - covered);
    } else {
      const double p = (q + 0.5 - offset) / scale - 0.5;  // source pixel-centre coordinate
      if (p < -0.5 || p > n_src - 0.5) {
        t.pad = 1.0;
        continue;
      }
      const double pc = std::min(std::max(p, 0.0), double(n_src - 1));
      const int i0 = std::min(int(pc), std::max(n_src - 2, 0));
      const double f = pc - i0;
      t.first = i0;
      t.w = {1.0 - f};
      if (i0 + 1 < n_src) t.w.push_back(f);
    }
  }
  return taps;
}

}  // namespace

Image letterbox_image(const Image& src, const Letterbox& lb, float pad) {
  SM_CHECK(src.width == lb.src_width && src.height == lb.src_height,
           "letterbox_image: image is " << src.width << "x" << src.height << ", letterbox expects "
                                        << lb.src_width << "x" << lb.src_height);
  const auto tx = axis_taps(src.width, lb.dst_width, lb.scale, lb.offset_x);
  const auto ty = axis_taps(src.height, lb.dst_height, lb.scale, lb.offset_y);
  // Horizontal pass: (src_height, dst_width), then vertical: (dst_height, dst_width).
  std::vector<double> tmp(size_t(src.height) * size_t(lb.dst_width));
  // Rows (then output rows) are independent: split over the kernel threads (a 2000×1000 film is
  // 2 M source pixels, a few ms on one core).
  const int threads = exec_context().threads_or_default();
#pragma omp parallel for num_threads(threads) schedule(static) if (int64_t(src.height) * lb.dst_width > 20000)
  for (int y = 0; y < src.height; ++y)
    for (int q = 0; q < lb.dst_width; ++q) {
      const AxisTap& t = tx[size_t(q)];
      double v = t.pad * pad;
      for (size_t k = 0; k < t.w.size(); ++k) v += t.w[k] * src.at(t.first + int(k), y);
      tmp[size_t(y) * size_t(lb.dst_width) + size_t(q)] = v;
    }
  Image out(lb.dst_width, lb.dst_height, pad);
  out.bits = src.bits;
  out.format = src.format;
#pragma omp parallel for num_threads(threads) schedule(static) if (int64_t(lb.dst_height) * lb.dst_width > 20000)
  for (int r = 0; r < lb.dst_height; ++r) {
    const AxisTap& t = ty[size_t(r)];
    for (int q = 0; q < lb.dst_width; ++q) {
      double v = t.pad * pad;
      for (size_t k = 0; k < t.w.size(); ++k) v += t.w[k] * tmp[size_t(t.first + int(k)) * size_t(lb.dst_width) + size_t(q)];
      out.at(q, r) = float(v);
    }
  }
  return out;
}

}  // namespace sm
