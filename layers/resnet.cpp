// ResNet blocks and backbone builder (see resnet.h); follows torchvision.models.resnet.
#include "layers/resnet.h"

#include "layers/activation.h"
#include "layers/elementwise.h"
#include "layers/pooling.h"

namespace sm {

namespace {

std::shared_ptr<Sequential> downsample_make(int64_t inplanes, int64_t outplanes, int64_t stride, Rng& rng,
                                            const BatchNormParams& bn) {
  auto ds = std::make_shared<Sequential>();
  ds->push_back(std::make_shared<Conv2d>(inplanes, outplanes, 1, rng, Conv2dParams::make(stride, 0), false));
  ds->push_back(std::make_shared<BatchNorm2d>(outplanes, bn));
  return ds;
}

// 3x3 conv with padding = dilation (keeps the size at stride 1), no bias.
std::shared_ptr<Conv2d> conv3x3_make(int64_t cin, int64_t cout, int64_t stride, int64_t dilation, Rng& rng) {
  return std::make_shared<Conv2d>(cin, cout, 3, rng, Conv2dParams::make(stride, dilation, dilation), false);
}

// The downsample branch (conv 1×1, BN) folded into one conv.
std::shared_ptr<FoldedConv> downsample_fold(const std::shared_ptr<Sequential>& ds) {
  if (!ds) return nullptr;
  auto conv = std::dynamic_pointer_cast<Conv2d>(ds->at(0));
  auto bn = std::dynamic_pointer_cast<BatchNorm2d>(ds->at(1));
  SM_CHECK(conv && bn, "ResNet: a downsample branch must be Conv2d then BatchNorm2d");
  return std::make_shared<FoldedConv>(*conv, bn.get());
}

}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, const BlockParams& bp, bool downsample, Rng& rng,
                       const BatchNormParams& bn) {
  // Registration order = torchvision's: conv1, bn1, conv2, bn2, downsample.
  conv1_ = module_add("conv1", conv3x3_make(inplanes, planes, bp.stride, bp.dilation_first, rng));
  bn1_ = module_add("bn1", std::make_shared<BatchNorm2d>(planes, bn));
  conv2_ = module_add("conv2", conv3x3_make(planes, planes, 1, bp.dilation, rng));
  bn2_ = module_add("bn2", std::make_shared<BatchNorm2d>(planes, bn));
  if (downsample) downsample_ = module_add("downsample", downsample_make(inplanes, planes, bp.stride, rng, bn));
}

void BasicBlock::inference_snapshot_build() {
  folded1_ = std::make_shared<FoldedConv>(*conv1_, bn1_.get());
  folded2_ = std::make_shared<FoldedConv>(*conv2_, bn2_.get());
  folded_down_ = downsample_fold(downsample_);
}

void BasicBlock::inference_snapshot_drop() { folded1_ = folded2_ = folded_down_ = nullptr; }

Var BasicBlock::forward(const Var& x) {
  if (inference_snapshot_active()) {
    Var out = folded1_->forward(x, true);
    out = folded2_->forward(out, false);
    return add_relu(out, folded_down_ ? folded_down_->forward(x, false) : x);
  }
  Var out = relu(bn1_->forward(conv1_->forward(x)));  // (N, planes, Ho, Wo)
  out = bn2_->forward(conv2_->forward(out));
  Var identity = downsample_ ? downsample_->forward(x) : x;
  return add_relu(out, identity);
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, const BlockParams& bp, bool downsample, Rng& rng,
                       const BatchNormParams& bn, int64_t base_width) {
  const int64_t width = planes * base_width / 64;
  conv1_ = module_add("conv1", std::make_shared<Conv2d>(inplanes, width, 1, rng, Conv2dParams{}, false));
  bn1_ = module_add("bn1", std::make_shared<BatchNorm2d>(width, bn));
  conv2_ = module_add("conv2", conv3x3_make(width, width, bp.stride, bp.dilation_first, rng));
  bn2_ = module_add("bn2", std::make_shared<BatchNorm2d>(width, bn));
  conv3_ = module_add("conv3", std::make_shared<Conv2d>(width, planes * expansion, 1, rng, Conv2dParams{}, false));
  bn3_ = module_add("bn3", std::make_shared<BatchNorm2d>(planes * expansion, bn));
  if (downsample)
    downsample_ = module_add("downsample", downsample_make(inplanes, planes * expansion, bp.stride, rng, bn));
}

void Bottleneck::inference_snapshot_build() {
  folded1_ = std::make_shared<FoldedConv>(*conv1_, bn1_.get());
  folded2_ = std::make_shared<FoldedConv>(*conv2_, bn2_.get());
  folded3_ = std::make_shared<FoldedConv>(*conv3_, bn3_.get());
  folded_down_ = downsample_fold(downsample_);
}

void Bottleneck::inference_snapshot_drop() { folded1_ = folded2_ = folded3_ = folded_down_ = nullptr; }

Var Bottleneck::forward(const Var& x) {
  if (inference_snapshot_active()) {
    Var out = folded1_->forward(x, true);
    out = folded2_->forward(out, true);
    out = folded3_->forward(out, false);
    return add_relu(out, folded_down_ ? folded_down_->forward(x, false) : x);
  }
  Var out = relu(bn1_->forward(conv1_->forward(x)));  // (N, width, H, W)
  out = relu(bn2_->forward(conv2_->forward(out)));    // (N, width, Ho, Wo)
  out = bn3_->forward(conv3_->forward(out));          // (N, 4*planes, Ho, Wo)
  Var identity = downsample_ ? downsample_->forward(x) : x;
  return add_relu(out, identity);
}

ResNetConfig resnet_config_resolve(const ResNetConfig& cfg) {
  ResNetConfig c = cfg;
  switch (cfg.depth) {
    case 18: c.block = BlockType::Basic, c.blocks = {2, 2, 2, 2}; break;
    case 34: c.block = BlockType::Basic, c.blocks = {3, 4, 6, 3}; break;
    case 50: c.block = BlockType::Bottleneck, c.blocks = {3, 4, 6, 3}; break;
    case 0: break;
    default: SM_FAIL("ResNetConfig: depth " << cfg.depth << " is not 18, 34 or 50 (use depth 0 with blocks for custom)");
  }
  SM_CHECK(!c.blocks.empty() && c.blocks.size() == c.widths.size(),
           "ResNetConfig: " << c.blocks.size() << " stages of blocks but " << c.widths.size()
                            << " widths (give one width per stage)");
  for (size_t i = 0; i < c.blocks.size(); ++i)
    SM_CHECK(c.blocks[i] > 0 && c.widths[i] > 0, "ResNetConfig: stage " << i + 1 << " needs blocks and width > 0");
  if (c.stem_width == 0) c.stem_width = c.widths[0];
  SM_CHECK(c.in_channels > 0 && c.stem_width > 0, "ResNetConfig: in_channels and stem_width must be positive");
  const int64_t max_os = int64_t(4) << (c.blocks.size() - 1);
  SM_CHECK(c.output_stride >= 4 && c.output_stride <= max_os && (c.output_stride & (c.output_stride - 1)) == 0,
           "ResNetConfig: output_stride " << c.output_stride << " must be a power of 2 in [4, " << max_os << "] for "
                                          << c.blocks.size() << " stages");
  return c;
}

ResNet::ResNet(const ResNetConfig& cfg_in, Rng& rng) : cfg_(resnet_config_resolve(cfg_in)) {
  const ResNetConfig& c = cfg_;
  conv1_ = module_add("conv1", std::make_shared<Conv2d>(c.in_channels, c.stem_width, 7, rng, Conv2dParams::make(2, 3), false));
  bn1_ = module_add("bn1", std::make_shared<BatchNorm2d>(c.stem_width, c.bn));
  const int64_t expansion = c.block == BlockType::Basic ? BasicBlock::expansion : Bottleneck::expansion;
  int64_t inplanes = c.stem_width, current_stride = 4, dilation = 1;
  for (size_t s = 0; s < c.blocks.size(); ++s) {
    const int64_t planes = c.widths[s];
    int64_t stride = s == 0 ? 1 : 2;
    const int64_t previous_dilation = dilation;
    if (stride == 2 && current_stride * 2 > c.output_stride) {
      if (c.dilate) dilation *= stride;  // torchvision: replace_stride_with_dilation
      stride = 1;
    }
    current_stride *= stride;
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < c.blocks[s]; ++b) {
      const BlockParams bp = b == 0 ? BlockParams{stride, previous_dilation, dilation} : BlockParams{1, dilation, dilation};
      const bool ds = b == 0 && (stride != 1 || inplanes != planes * expansion);
      if (c.block == BlockType::Basic)
        layer->push_back(std::make_shared<BasicBlock>(inplanes, planes, bp, ds, rng, c.bn));
      else
        layer->push_back(std::make_shared<Bottleneck>(inplanes, planes, bp, ds, rng, c.bn));
      inplanes = planes * expansion;
    }
    layers_.push_back(module_add("layer" + std::to_string(s + 1), layer));
  }
  out_channels_ = inplanes;
}

void ResNet::inference_snapshot_build() { folded_stem_ = std::make_shared<FoldedConv>(*conv1_, bn1_.get()); }
void ResNet::inference_snapshot_drop() { folded_stem_ = nullptr; }

std::vector<Var> ResNet::forward_stages(const Var& x) {
  SM_CHECK(x.value().dim() == 4 && x.size(1) == cfg_.in_channels,
           "ResNet: input " << shape_str(x.shape()) << " must be (N, " << cfg_.in_channels << ", H, W)");
  Var h = inference_snapshot_active() ? folded_stem_->forward(x, true)            // conv1+bn1+relu folded
                                      : relu(bn1_->forward(conv1_->forward(x)));  // (N, stem, H/2, W/2)
  h = max_pool2d(h, MaxPool2dParams{3, 2, 1});           // (N, stem, H/4, W/4)
  std::vector<Var> out;
  for (auto& layer : layers_) {
    h = layer->forward(h);
    out.push_back(h);
  }
  return out;
}

Var ResNet::forward(const Var& x) { return forward_stages(x).back(); }

}  // namespace sm
