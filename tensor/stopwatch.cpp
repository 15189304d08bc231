// duration_text (see stopwatch.h).
#include "tensor/stopwatch.h"

#include <cmath>
#include <cstdio>

namespace sm {

std::string duration_text(double seconds) {
  const long t = std::isfinite(seconds) ? long(std::lround(seconds > 0 ? seconds : 0.0)) : 0;
  char buf[32];
  if (t < 60)
    std::snprintf(buf, sizeof(buf), "%lds", t);
  else if (t < 3600)
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  return buf;
}

}  // namespace sm
