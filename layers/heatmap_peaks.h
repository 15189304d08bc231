// The separate modes of a DSNT heatmap (issue 19 §1). DSNT's coordinate is the heatmap's mean,
// which lands BETWEEN two vertebrae when a network hesitates between them; the local maxima
// keep the two hypotheses apart, so that a decoder that knows the anatomy (level_chain) can
// choose. No gradient: inference only.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace sm {

// One mode of a heatmap channel, in heatmap pixels (cell centres at integers).
struct HeatmapPeak {
  double x = 0, y = 0;  // probability-weighted centroid of the window around the maximum
  double mass = 0;      // probability in that window (the channel sums to 1)
};

// Local maxima of one normalised channel p (h × w, row-major), strongest first, at most
// `max_peaks`, each at least radius + 1 cells (Chebyshev) from a stronger one; window =
// (2·radius + 1)² cells clipped to the map. A cell is a maximum when no neighbour of its 3 × 3
// neighbourhood is larger (plateaus keep their first cell in row-major order).
std::vector<HeatmapPeak> heatmap_channel_peaks(const float* p, int height, int width, int max_peaks = 3, int radius = 2);

// Every channel of p (N, C, H, W) on any device (copied to the host): (N·C) lists.
std::vector<std::vector<HeatmapPeak>> heatmap_peaks(const Tensor& p, int max_peaks = 3, int radius = 2);

}  // namespace sm
