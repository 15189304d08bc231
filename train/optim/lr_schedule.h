// Learning-rate schedules as pure functions of the step index: constant, step decay (torch's
// StepLR), cosine to a minimum (CosineAnnealingLR's closed form), each optionally preceded by a
// linear warm-up (LinearLR chained with SequentialLR).
#pragma once
#include <cstdint>
#include <string>

namespace sm {

struct LrSchedule {
  enum class Kind { Constant, Step, Cosine };
  Kind kind = Kind::Constant;
  double base_lr = 1e-3;
  // Step: lr = base * gamma^floor(s / step_size).
  int64_t step_size = 1000;
  double gamma = 0.1;
  // Cosine over the steps after warm-up: lr = min + (base - min) (1 + cos(pi s / T)) / 2,
  // T = total_steps - warmup_steps, s clamped to T.
  int64_t total_steps = 0;
  double min_lr = 0.0;
  // Warm-up: for s < W, lr = base (f + (1 - f) s / W); afterwards the schedule runs on s - W.
  int64_t warmup_steps = 0;
  double warmup_start_factor = 0.0;

  // The lr for 0-based optimizer step `step` (the number of steps already taken).
  double lr_at(int64_t step) const;
  std::string str() const;  // one line for the run's config table
};

}  // namespace sm
