// JSON input for the harnesses: the bytes parsed without exceptions (invalid JSON is the
// parser's business, fuzzed in the file readers' own wrappers only through this same parse).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>

#include "fuzz_support.h"

namespace sm::fuzz {

inline std::optional<nlohmann::json> json_of(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace sm::fuzz
