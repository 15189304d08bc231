// ProgressPrinter (see progress_print.h).
#include "apps/progress_print.h"

#include <cstdio>

namespace sm::app {

void ProgressPrinter::update(int done, int total, int rated, double seconds) {
  if (done > 1 && done < total && last_line_.seconds() < 1.0) return;
  last_line_.restart();
  const double rate = rated > 0 && seconds > 0 ? rated / seconds : 0.0;
  const int left = total - done;
  std::fprintf(stderr, "[%d/%d] %.1f %s/s ETA %s\n", done, total, rate, unit_.c_str(),
               rate > 0 ? duration_text(left / rate).c_str() : (left == 0 ? "0s" : "?"));
}

}  // namespace sm::app
