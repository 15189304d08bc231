// The tiny network and optimizer whose checkpoint the checkpoint harness loads; the seed
// generator saves its seeds from the same fixture so that they match its weights file.
#pragma once
#include <memory>
#include <string>

#include "layers/parameter_buffer.h"
#include "models/nets/dsnt_net.h"
#include "train/optim/optimizer.h"
#include "train/run/checkpoint.h"

namespace sm::fuzz {

struct CheckpointFixture {
  std::unique_ptr<DsntNet> net;
  std::unique_ptr<ParameterBuffer> params;
  std::unique_ptr<Adam> adam;

  CheckpointFixture() {
    DsntNetConfig c;
    c.backbone.depth = 0;
    c.backbone.blocks = {1, 1};
    c.backbone.widths = {2, 4};
    c.backbone.output_stride = 8;
    c.landmarks = 1;
    Rng rng(11);
    net = std::make_unique<DsntNet>(c, rng);
    params = std::make_unique<ParameterBuffer>(*net);
    adam = std::make_unique<Adam>(*params, AdamConfig{});
    adam->zero_grad();
    for (int k = 0; k < 3; ++k) adam->step();  // the state's step count (zero gradients)
  }

  // The state that the seeds carry: two RNG streams, a position and some extra JSON.
  static TrainState state() {
    TrainState s;
    s.step = 3, s.epoch = 1, s.data_position = 2;
    s.rngs["shuffle"] = Rng(5).state();
    s.rngs["augment"] = Rng(6).state();
    s.extra_json = R"({"stage": "fuzz", "best": null})";
    return s;
  }
};

}  // namespace sm::fuzz
