// DSNT head: 1×1 conv (no bias) -> flat softmax -> DSNT.
#include "layers/dsnt_head.h"

#include <cmath>

#include "layers/dsnt.h"

namespace sm {

DsntHead::DsntHead(int64_t in_channels, int64_t landmarks, Rng& rng) : landmarks_(landmarks) {
  SM_CHECK(in_channels > 0 && landmarks > 0, "DsntHead(" << in_channels << ", " << landmarks << ")");
  // PyTorch's default conv init, U(-1/√fan_in, 1/√fan_in): small logits give flat initial maps.
  Tensor w = Tensor::empty({landmarks, in_channels, 1, 1});
  const double bound = 1.0 / std::sqrt(double(in_channels));
  tensor_fill_uniform(w, rng, -bound, bound);
  weight_ = parameter_add("weight", w);
}

DsntOutput DsntHead::forward_all(const Var& features) {
  DsntOutput out;
  out.logits = conv2d(features, weight_, Var(), Conv2dParams{});
  out.heatmaps = flat_softmax(out.logits);
  out.coords = dsnt(out.heatmaps);
  return out;
}

}  // namespace sm
