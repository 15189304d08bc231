// The one progress printer of the commands (predict, eval): "[12/100] 3.1 img/s ETA 29s" on
// stderr, for the first and last item and otherwise at most one line a second.
#pragma once
#include <string>

#include "tensor/stopwatch.h"

namespace sm::app {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::string unit = "img") : unit_(std::move(unit)) {}
  // `done` of `total` finished, `seconds` after the start; the rate counts `rated` items (those
  // that did the work: resumed ones, say, do not).
  void update(int done, int total, int rated, double seconds);
  // The same, timed from this printer's construction and every finished item rated.
  void update(int done, int total) { update(done, total, done, start_.seconds()); }

 private:
  std::string unit_;
  Stopwatch start_, last_line_;
};

}  // namespace sm::app
