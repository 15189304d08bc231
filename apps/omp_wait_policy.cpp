// The program's OpenMP wait policy (see omp_wait_policy.h).
#include "apps/omp_wait_policy.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace sm::app {

void omp_wait_policy_passive_by_default(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Only reached when the restart failed (no /proc): carry on under libgomp's default policy
  // (it only decides how fast the threads run beside other processes, never the results).
  unsetenv("OMP_WAIT_POLICY");
}

const char* omp_wait_policy_in_effect() {
  static const std::string policy = [] {
    if (const char* p = std::getenv("OMP_WAIT_POLICY")) return std::string(p);
    if (const char* s = std::getenv("GOMP_SPINCOUNT")) return "spincount=" + std::string(s);
    return std::string("default");
  }();
  return policy.c_str();
}

}  // namespace sm::app
