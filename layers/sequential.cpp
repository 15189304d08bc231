// Sequential forward (see sequential.h).
#include "layers/sequential.h"

namespace sm {

Var Sequential::forward(const Var& x) {
  Var h = x;
  for (auto& m : layers_) h = m->forward(h);
  return h;
}

}  // namespace sm
