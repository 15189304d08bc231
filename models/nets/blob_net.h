// The network of the blob DSNT demo (train/run/dsnt_demo.h): conv-BN-ReLU ×4 at full resolution,
// then the DSNT head, so that each heatmap covers the input pixel for pixel.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/dsnt_head.h"
#include "tensor/rng.h"

namespace sm {

// Dilations 1, 2, 4, 1 give a receptive field of 17 px: enough to see a whole blob of the demo's
// 32-px images; heatmaps have the input's size, so no coordinate conversion is needed.
// Input (N, 1, S, S); output coords (N, 1, 2) normalised to (−1, 1).
class BlobNet : public Module {
 public:
  BlobNet(int width, Rng& rng);
  DsntOutput forward_all(const Var& x);
  Var forward(const Var& x) override { return forward_all(x).coords; }
  std::string type_name() const override { return "BlobNet"; }

 private:
  std::vector<std::shared_ptr<Conv2d>> convs_;
  std::vector<std::shared_ptr<BatchNorm2d>> bns_;
  std::shared_ptr<DsntHead> head_;
};

}  // namespace sm
