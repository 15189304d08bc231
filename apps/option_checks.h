// Parse-time checks shared by the subcommands' numeric options (issue 11 item 10): a number out
// of range is refused with the option's name before any work starts, instead of wrapping
// (a seed of -1 read as 2^64-1) or silently meaning something else (--threads -1 or 1000).
#pragma once
#include <CLI/CLI.hpp>

namespace sm::app {

// CPU threads: 1..256. More than the machine has only oversubscribes (hundreds of times slower
// with OpenMP's spinning), so the bound is generous yet catches a slipped digit.
constexpr int kThreadsMax = 256;
CLI::Validator threads_range();

// A seed: decimal digits only (no sign, no exponent), at most 2^64-1. CLI11 would turn "-1" into
// 2^64-1 and saturate 2^64, making distinct strings the same seed.
CLI::Validator seed_check();

}  // namespace sm::app
