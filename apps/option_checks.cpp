// Shared option validators (see option_checks.h).
#include "apps/option_checks.h"

#include <cstdint>
#include <limits>
#include <string>

namespace sm::app {

CLI::Validator threads_range() { return CLI::Range(1, kThreadsMax, "THREADS"); }

CLI::Validator seed_check() {
  return CLI::Validator(
      [](const std::string& text) -> std::string {
        const std::string bad = "seed '" + text + "' must be a whole number from 0 to 18446744073709551615";
        if (text.empty() || text.size() > 20) return bad;
        uint64_t v = 0;
        for (char c : text) {
          if (c < '0' || c > '9') return bad;
          const uint64_t d = uint64_t(c - '0');
          if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return bad;  // v * 10 + d would wrap
          v = v * 10 + d;
        }
        return "";
      },
      "SEED", "seed");
}

}  // namespace sm::app
