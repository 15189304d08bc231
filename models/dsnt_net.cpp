// ResNet + DSNT head (see dsnt_net.h).
#include "models/dsnt_net.h"

namespace sm {

DsntNet::DsntNet(const DsntNetConfig& config, Rng& rng) : config_(config) {
  backbone_ = module_add("", std::make_shared<ResNet>(config.backbone, rng));  // unprefixed names
  head_ = module_add("head", std::make_shared<DsntHead>(backbone_->out_channels(), config.landmarks, rng));
}

DsntOutput DsntNet::forward_all(const Var& x) { return head_->forward_all(backbone_->forward(x)); }

nlohmann::json dsnt_net_config_to_json(const DsntNetConfig& c) {
  const ResNetConfig& b = c.backbone;
  return {{"depth", b.depth},
          {"block", b.block == BlockType::Basic ? "basic" : "bottleneck"},
          {"blocks", b.blocks},
          {"widths", b.widths},
          {"stem_width", b.stem_width},
          {"in_channels", b.in_channels},
          {"output_stride", b.output_stride},
          {"dilate", b.dilate},
          {"landmarks", c.landmarks}};
}

DsntNetConfig dsnt_net_config_from_json(const nlohmann::json& j) {
  DsntNetConfig c;
  try {
    ResNetConfig& b = c.backbone;
    b.depth = j.value("depth", 0);
    b.block = j.value("block", std::string("basic")) == "bottleneck" ? BlockType::Bottleneck : BlockType::Basic;
    if (j.contains("blocks")) b.blocks = j.at("blocks").get<std::vector<int64_t>>();
    if (j.contains("widths")) b.widths = j.at("widths").get<std::vector<int64_t>>();
    b.stem_width = j.value("stem_width", int64_t(0));
    b.in_channels = j.value("in_channels", int64_t(1));
    b.output_stride = j.value("output_stride", int64_t(8));
    b.dilate = j.value("dilate", true);
    c.landmarks = j.at("landmarks").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL("network config: " << e.what());
  }
  return c;
}

}  // namespace sm
