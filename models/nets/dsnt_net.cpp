// ResNet + DSNT head (see dsnt_net.h).
#include "models/nets/dsnt_net.h"

#include "tensor/check.h"
#include "tensor/json_field.h"

namespace sm {

double dsnt_net_parameter_count(const DsntNetConfig& config) {
  const ResNetConfig c = resnet_config_resolve(config.backbone);
  const bool basic = c.block == BlockType::Basic;
  const double expansion = basic ? 1 : 4;
  double n = 49.0 * double(c.in_channels) * double(c.stem_width) + 2.0 * double(c.stem_width);  // conv1, bn1
  double in = double(c.stem_width);
  for (size_t s = 0; s < c.widths.size(); ++s) {
    const double w = double(c.widths[s]), out = w * expansion;
    for (int64_t b = 0; b < c.blocks[size_t(s)]; ++b) {
      n += basic ? 9 * in * w + 9 * w * w + 4 * w : in * w + 9 * w * w + w * out + 4 * w + 2 * out;
      if (b == 0 && (s > 0 || in != out)) n += in * out + 2 * out;  // downsample (an upper bound)
      in = out;
    }
  }
  return n + in * double(config.landmarks);  // head: 1x1 conv, no bias
}

void dsnt_net_config_validate(const DsntNetConfig& c, const std::string& what) {
  const ResNetConfig& b = c.backbone;
  SM_CHECK(b.widths.size() >= 1 && b.widths.size() <= 16, what << ": 'widths' must hold 1..16 stages (got "
                                                                << b.widths.size() << ")");
  for (int64_t w : b.widths) SM_CHECK(w >= 1 && w <= 4096, what << ": width " << w << " outside 1..4096");
  if (b.depth == 0) {
    SM_CHECK(b.blocks.size() == b.widths.size(), what << ": 'blocks' must have one entry per width");
    for (int64_t n : b.blocks) SM_CHECK(n >= 1 && n <= 64, what << ": blocks per stage " << n << " outside 1..64");
  } else {
    SM_CHECK(b.depth == 18 || b.depth == 34 || b.depth == 50, what << ": depth " << b.depth << " is not 0, 18, 34 or 50");
    SM_CHECK(b.widths.size() == 4, what << ": depth " << b.depth << " needs 4 widths");
  }
  SM_CHECK(b.stem_width >= 0 && b.stem_width <= 4096, what << ": stem_width " << b.stem_width << " outside 0..4096");
  SM_CHECK(b.in_channels >= 1 && b.in_channels <= 16, what << ": in_channels " << b.in_channels << " outside 1..16");
  SM_CHECK(c.landmarks >= 1 && c.landmarks <= 1024, what << ": landmarks " << c.landmarks << " outside 1..1024");
  (void)resnet_config_resolve(b);  // output stride against the stage count, with its own message
  // Each width may be sane and the whole still take gigabytes (16 stages of 4096 channels).
  const double params = dsnt_net_parameter_count(c);
  SM_CHECK(params <= kDsntNetParametersMax, what << ": the network would have " << params / 1e6 << " M parameters, more than "
                                                 << kDsntNetParametersMax / 1e6 << " M (check 'widths' and 'blocks')");
}

DsntNet::DsntNet(const DsntNetConfig& config, Rng& rng) : config_(config) {
  dsnt_net_config_validate(config, "network config");  // before any layer allocates
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

DsntNetConfig dsnt_net_config_from_json(const nlohmann::json& j, const std::string& where) {
  DsntNetConfig c;
  ResNetConfig& b = c.backbone;
  b.depth = json_field(j, "depth", 0, where);
  const std::string block = json_field<std::string>(j, "block", "basic", where);
  SM_CHECK(block == "basic" || block == "bottleneck", where << ": 'block' must be \"basic\" or \"bottleneck\", got '" << block << "'");
  b.block = block == "bottleneck" ? BlockType::Bottleneck : BlockType::Basic;
  b.blocks = json_field(j, "blocks", b.blocks, where);
  b.widths = json_field(j, "widths", b.widths, where);
  b.stem_width = json_field(j, "stem_width", int64_t(0), where);
  b.in_channels = json_field(j, "in_channels", int64_t(1), where);
  b.output_stride = json_field(j, "output_stride", int64_t(8), where);
  b.dilate = json_field(j, "dilate", true, where);
  c.landmarks = json_field_required<int64_t>(j, "landmarks", where);
  dsnt_net_config_validate(c, where);
  return c;
}

}  // namespace sm
