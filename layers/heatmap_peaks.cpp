// Heatmap modes (see heatmap_peaks.h).
#include "layers/heatmap_peaks.h"

#include <algorithm>
#include <cstdlib>

#include "tensor/check.h"

namespace sm {

std::vector<HeatmapPeak> heatmap_channel_peaks(const float* p, int h, int w, int max_peaks, int radius) {
  SM_CHECK(h > 0 && w > 0 && max_peaks > 0 && radius >= 0, "heatmap_peaks: bad sizes");
  // Local maxima: no 3 × 3 neighbour larger; of equal neighbours only the first in row-major
  // order counts, so a plateau yields one cell.
  std::vector<int> maxima;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float v = p[y * w + x];
      bool is_max = v > 0;
      for (int dy = -1; dy <= 1 && is_max; ++dy)
        for (int dx = -1; dx <= 1 && is_max; ++dx) {
          const int yy = y + dy, xx = x + dx;
          if ((dx == 0 && dy == 0) || yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
          const float n = p[yy * w + xx];
          const bool earlier = dy < 0 || (dy == 0 && dx < 0);
          if (n > v || (earlier && n == v)) is_max = false;
        }
      if (is_max) maxima.push_back(y * w + x);
    }
  std::stable_sort(maxima.begin(), maxima.end(), [p](int a, int b) { return p[a] > p[b]; });
  std::vector<HeatmapPeak> out;
  std::vector<int> kept;
  for (int m : maxima) {
    if (int(out.size()) == max_peaks) break;
    const int y = m / w, x = m % w;
    bool near = false;
    for (int k : kept) near = near || (std::abs(k / w - y) <= radius && std::abs(k % w - x) <= radius);
    if (near) continue;
    kept.push_back(m);
    HeatmapPeak pk;
    double sx = 0, sy = 0;
    for (int yy = std::max(0, y - radius); yy <= std::min(h - 1, y + radius); ++yy)
      for (int xx = std::max(0, x - radius); xx <= std::min(w - 1, x + radius); ++xx) {
        const double v = p[yy * w + xx];
        pk.mass += v, sx += v * xx, sy += v * yy;
      }
    pk.x = pk.mass > 0 ? sx / pk.mass : x;
    pk.y = pk.mass > 0 ? sy / pk.mass : y;
    out.push_back(pk);
  }
  return out;
}

std::vector<std::vector<HeatmapPeak>> heatmap_peaks(const Tensor& p, int max_peaks, int radius) {
  SM_CHECK(p.dim() == 4, "heatmap_peaks: expected (N, C, H, W) heatmaps, got " << p.dim() << " dimensions");
  const Tensor host = p.to(Device::CPU).to(DType::F32).contiguous();
  const int64_t nc = host.size(0) * host.size(1), h = host.size(2), w = host.size(3);
  std::vector<std::vector<HeatmapPeak>> out(static_cast<size_t>(nc));
  for (int64_t k = 0; k < nc; ++k) out[size_t(k)] = heatmap_channel_peaks(host.f32() + k * h * w, int(h), int(w), max_peaks, radius);
  return out;
}

}  // namespace sm
