// ResNet backbones with torchvision's structure and parameter names (torchvision.models.resnet,
// v1.5: the stride sits in the 3x3 conv): BasicBlock, Bottleneck, and a builder for depths
// 18/34/50 or custom stages, any widths, any input channels, output stride 8/16/32.
#pragma once
#include <memory>
#include <vector>

#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/conv_bn_fold.h"
#include "layers/sequential.h"
#include "tensor/rng.h"

namespace sm {

// Where a block sits: stride of its first strided conv, the dilation of that conv
// (dilation_first: torchvision's `previous_dilation` for the first block of a stage) and the
// dilation of the block's other 3x3 convs.
struct BlockParams {
  int64_t stride = 1;
  int64_t dilation_first = 1;
  int64_t dilation = 1;
};

// conv1 3x3 (stride, dilation_first) -> bn1 -> relu -> conv2 3x3 (dilation) -> bn2, plus the
// identity or downsample (1x1 conv with the stride, no bias; BN), then relu.
// torchvision's BasicBlock refuses dilation; ours dilates conv1 by dilation_first and conv2 by
// dilation, which is exactly torchvision's replace-stride-with-dilation rule (every conv after a
// removed stride is dilated by it).
class BasicBlock : public Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, const BlockParams& bp, bool downsample, Rng& rng,
             const BatchNormParams& bn = {});
  Var forward(const Var& x) override;  // (N, inplanes, H, W) -> (N, planes, H/stride, W/stride)
  std::string type_name() const override { return "BasicBlock"; }

 protected:
  void inference_snapshot_build() override;
  void inference_snapshot_drop() override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Sequential> downsample_;  // "downsample.0" Conv2d 1x1, "downsample.1" BN; or null
  // Frozen: conv1+bn1(+relu), conv2+bn2, downsample conv+BN folded (conv_bn_fold.h).
  std::shared_ptr<FoldedConv> folded1_, folded2_, folded_down_;
};

// conv1 1x1 -> bn1 -> relu -> conv2 3x3 (stride, dilation_first) -> bn2 -> relu -> conv3 1x1
// (planes*4) -> bn3, plus identity/downsample, relu. width = planes * base_width / 64.
class Bottleneck : public Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, const BlockParams& bp, bool downsample, Rng& rng,
             const BatchNormParams& bn = {}, int64_t base_width = 64);
  Var forward(const Var& x) override;  // (N, inplanes, H, W) -> (N, 4*planes, H/stride, W/stride)
  std::string type_name() const override { return "Bottleneck"; }

 protected:
  void inference_snapshot_build() override;
  void inference_snapshot_drop() override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<Sequential> downsample_;
  std::shared_ptr<FoldedConv> folded1_, folded2_, folded3_, folded_down_;  // frozen, as BasicBlock's
};

enum class BlockType { Basic, Bottleneck };

struct ResNetConfig {
  int depth = 18;                      // 18, 34 (Basic), 50 (Bottleneck); 0: use block + blocks
  BlockType block = BlockType::Basic;  // with depth 0
  std::vector<int64_t> blocks;         // blocks per stage, with depth 0 (e.g. {2, 2, 2, 2})
  std::vector<int64_t> widths{64, 128, 256, 512};  // planes per stage (one entry per stage)
  int64_t stem_width = 0;              // channels of the stem conv; 0: widths[0] (torchvision: 64)
  int64_t in_channels = 1;
  int64_t output_stride = 32;          // 8, 16 or 32 (4 * 2^(stages-1) at most)
  // Stages that would exceed output_stride run at stride 1. true: their convs are dilated
  // (torchvision's replace_stride_with_dilation); false: plain stride 1, no dilation (the
  // benchmark network of bench/README.md: output stride 16, layer4 stride 1 undilated, opening
  // with a 1x1 projection 256 -> 512 at stride 1).
  bool dilate = true;
  BatchNormParams bn;
};

// The config with depth resolved to block type and blocks per stage (checks everything).
ResNetConfig resnet_config_resolve(const ResNetConfig& cfg);

// Backbone: conv1 7x7/2 (no bias) -> bn1 -> relu -> maxpool 3x3/2 pad 1 -> layer1..layerK.
// Names as torchvision: "conv1.weight", "bn1.*", "layer1.0.conv1.weight", ...,
// "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", ... (no fc).
// Init: convs Kaiming normal (fan_out), BN weight 1, bias 0 (torchvision's), from rng in order.
class ResNet : public Module {
 public:
  ResNet(const ResNetConfig& cfg, Rng& rng);
  Var forward(const Var& x) override;  // (N, in_channels, H, W) -> (N, out_channels(), H/os, W/os)
  // The output of every stage: layer1 (stride 4) ... layerK.
  std::vector<Var> forward_stages(const Var& x);
  std::string type_name() const override { return "ResNet"; }

  int64_t out_channels() const { return out_channels_; }
  const ResNetConfig& config() const { return cfg_; }

 protected:
  void inference_snapshot_build() override;
  void inference_snapshot_drop() override;

 private:
  std::shared_ptr<FoldedConv> folded_stem_;  // frozen: conv1 + bn1 (+ relu)
  ResNetConfig cfg_;
  int64_t out_channels_ = 0;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::vector<std::shared_ptr<Sequential>> layers_;
};

}  // namespace sm
