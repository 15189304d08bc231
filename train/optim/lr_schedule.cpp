// Learning-rate schedules (see lr_schedule.h); formulas of torch.optim.lr_scheduler.
#include "train/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "tensor/check.h"

namespace sm {

double LrSchedule::lr_at(int64_t step) const {
  SM_CHECK(step >= 0, "LrSchedule: negative step " << step);
  SM_CHECK(warmup_steps >= 0 && warmup_start_factor >= 0.0 && warmup_start_factor <= 1.0,
           "LrSchedule: warm-up needs warmup_steps >= 0 and a start factor in [0, 1]");
  if (step < warmup_steps)
    return base_lr * (warmup_start_factor + (1.0 - warmup_start_factor) * double(step) / double(warmup_steps));
  const int64_t s = step - warmup_steps;
  switch (kind) {
    case Kind::Constant:
      return base_lr;
    case Kind::Step:
      SM_CHECK(step_size > 0, "LrSchedule: step decay needs step_size > 0");
      return base_lr * std::pow(gamma, double(s / step_size));
    case Kind::Cosine: {
      const int64_t T = total_steps - warmup_steps;
      SM_CHECK(T > 0, "LrSchedule: cosine needs total_steps (" << total_steps << ") > warmup_steps (" << warmup_steps << ")");
      const double pi = 3.14159265358979323846;
      return min_lr + (base_lr - min_lr) * (1.0 + std::cos(pi * double(std::min(s, T)) / double(T))) / 2.0;
    }
  }
  return base_lr;
}

std::string LrSchedule::str() const {
  std::ostringstream os;
  os << (kind == Kind::Constant ? "constant" : kind == Kind::Step ? "step" : "cosine") << " base_lr=" << base_lr;
  if (kind == Kind::Step) os << " step_size=" << step_size << " gamma=" << gamma;
  if (kind == Kind::Cosine) os << " total_steps=" << total_steps << " min_lr=" << min_lr;
  if (warmup_steps > 0) os << " warmup_steps=" << warmup_steps << " warmup_start_factor=" << warmup_start_factor;
  return os.str();
}

}  // namespace sm
