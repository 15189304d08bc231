// Shared pieces of the libFuzzer harnesses in tests/fuzz/ (docs/reliability.md): the contract every
// reader promises (any bad input is an sm::Error naming the file, never another exception, a
// crash or a sanitizer report), a scratch folder per process, and the checkpoint fixture that
// the checkpoint harness and the seed generator must build identically.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "tensor/check.h"

namespace sm::fuzz {

// Runs fn; sm::Error is the documented way to refuse an input (printed when the environment has
// SPINEMARK_FUZZ_VERBOSE, to see why a seed is refused). Any other exception escaping a reader
// is a finding: report it and abort so that libFuzzer saves the input.
template <class Fn>
void expect_sm_error_only(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    static const bool verbose = std::getenv("SPINEMARK_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "fuzz: refused: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: a reader threw a non-sm::Error exception: %s\n", e.what());
    std::abort();
  }
}

// <tmp>/spinemark_fuzz_<pid>/, created on first use, kept for the process (harnesses reuse it).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("spinemark_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string bytes_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace sm::fuzz
