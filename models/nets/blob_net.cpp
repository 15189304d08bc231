// The blob demo's network (see blob_net.h).
#include "models/nets/blob_net.h"

#include "layers/activation.h"

namespace sm {

BlobNet::BlobNet(int width, Rng& rng) {
  const int64_t dil[4] = {1, 2, 4, 1};
  int64_t in = 1;
  for (int k = 0; k < 4; ++k) {
    const std::string i = std::to_string(k + 1);
    convs_.push_back(module_add("conv" + i, std::make_shared<Conv2d>(in, width, 3, rng, Conv2dParams::make(1, dil[k], dil[k]), false)));
    bns_.push_back(module_add("bn" + i, std::make_shared<BatchNorm2d>(width)));
    in = width;
  }
  head_ = module_add("head", std::make_shared<DsntHead>(width, 1, rng));
}

DsntOutput BlobNet::forward_all(const Var& x) {
  Var h = x;
  for (size_t k = 0; k < convs_.size(); ++k) h = relu(bns_[k]->forward(convs_[k]->forward(h)));
  return head_->forward_all(h);
}

}  // namespace sm
