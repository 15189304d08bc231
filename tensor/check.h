// Always-on checks (never `assert`): a failed check throws sm::Error whose message names the
// file:line and says what the user can do about it. Apps catch it and print one line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

}  // namespace sm

// SM_CHECK(cond, "message " << value): throws sm::Error("file:line: message value") when cond fails.
#define SM_CHECK(cond, msg)                                        \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::ostringstream sm_check_os_;                             \
      sm_check_os_ << msg;                                         \
      ::sm::throw_error(__FILE__, __LINE__, sm_check_os_.str());   \
    }                                                              \
  } while (0)

#define SM_FAIL(msg) SM_CHECK(false, msg)
