// The DSNT head (method.md §4): a 1×1 convolution WITHOUT bias from the backbone's features to
// one logit map per landmark, then flat softmax, then DSNT. Nothing (no BN, no activation) sits
// between the 1×1 conv and the softmax. Parameter: "weight" (K, Cin, 1, 1).
#pragma once
#include "layers/conv2d.h"

namespace sm {

struct DsntOutput {
  Var logits;    // (N, K, h, w) 1×1-conv outputs
  Var heatmaps;  // (N, K, h, w) flat-softmax probabilities
  Var coords;    // (N, K, 2) normalised (x, y) in (-1, 1)
};

class DsntHead : public Module {
 public:
  DsntHead(int64_t in_channels, int64_t landmarks, Rng& rng);
  DsntOutput forward_all(const Var& features);  // features (N, Cin, h, w)
  Var forward(const Var& features) override { return forward_all(features).coords; }
  std::string type_name() const override { return "DsntHead"; }
  int64_t landmarks() const { return landmarks_; }

 private:
  int64_t landmarks_;
  Var weight_;  // (K, Cin, 1, 1)
};

}  // namespace sm
