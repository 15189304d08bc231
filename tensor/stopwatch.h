// Wall-clock timing for progress lines and logs: one steady clock, one way to say "seconds since",
// one way to print a duration. (Benchmarks time with the same clock; see bench/ and train/bench/.)
#pragma once
#include <chrono>
#include <string>

namespace sm {

// Started at construction; seconds() reads the time elapsed since then (or since restart()).
// The steady clock never jumps with the system time, so ETAs and step times stay sane.
class Stopwatch {
 public:
  using Clock = std::chrono::steady_clock;
  Stopwatch() : start_(Clock::now()) {}
  void restart() { start_ = Clock::now(); }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  double ms() const { return 1e3 * seconds(); }

 private:
  Clock::time_point start_;
};

// A duration for people: "45s", "1m32s", "2h05m" (rounded to the second; negative or non-finite
// values print as "0s").
std::string duration_text(double seconds);

}  // namespace sm
