// A ResNet backbone + DSNT head: the network of every step of the pipeline (method.md §5).
// Names are torchvision's for the backbone ("conv1.weight", "layer1.0.conv1.weight", ...) plus
// "head.weight" for the 1×1 conv, so weights move to and from PyTorch by name.
#pragma once
#include <nlohmann/json.hpp>

#include "layers/dsnt_head.h"
#include "layers/resnet.h"

namespace sm {

struct DsntNetConfig {
  ResNetConfig backbone;
  int64_t landmarks = 1;  // heatmap channels K
};

// JSON <-> config (the "network" part of a run config and of the JSON saved next to weights).
// from_json names the key on a type error and validates the result (where: the source, for
// messages).
nlohmann::json dsnt_net_config_to_json(const DsntNetConfig& c);
DsntNetConfig dsnt_net_config_from_json(const nlohmann::json& j, const std::string& where = "network config");

// Limits checked before anything is built, whatever file the config came from (fixture, model
// folder, run config): 1..16 stages, widths 1..4096, 1..64 blocks per stage, in_channels 1..16,
// landmarks 1..1024, and at most kDsntNetParametersMax parameters in all (the paper preset has
// 21 M; ResNet-101 44 M). Throws naming `what` and the offending value.
constexpr double kDsntNetParametersMax = 100e6;
void dsnt_net_config_validate(const DsntNetConfig& c, const std::string& what);
// Parameters of the network (backbone + head), counted from the config without building it.
double dsnt_net_parameter_count(const DsntNetConfig& c);

class DsntNet : public Module {
 public:
  DsntNet(const DsntNetConfig& config, Rng& rng);  // validates config first (dsnt_net_config_validate)
  DsntOutput forward_all(const Var& x);  // x (N, in_channels, H, W)
  Var forward(const Var& x) override { return forward_all(x).coords; }
  std::string type_name() const override { return "DsntNet"; }
  const DsntNetConfig& config() const { return config_; }

 private:
  DsntNetConfig config_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<DsntHead> head_;
};

}  // namespace sm
