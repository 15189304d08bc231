// Typed reads of one member of a JSON object whose errors name the key and the expected type
// (nlohmann's own say only "type must be number, but is string"), and refuse what a plain get<>
// would quietly change: a negative number read into an unsigned seed, a fraction into an int,
// an integer beyond the target type.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "tensor/check.h"

namespace sm {

namespace json_field_detail {

template <class T> struct IsVector : std::false_type {};
template <class U> struct IsVector<std::vector<U>> : std::true_type {};

// The value converted to T, or an error naming `what` ("source: key").
template <class T>
T convert(const nlohmann::json& v, const std::string& what) {
  if constexpr (std::is_same_v<T, bool>) {
    SM_CHECK(v.is_boolean(), what << " must be true or false, got " << v.dump());
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    SM_CHECK(v.is_number_integer(), what << " must be a whole number, got " << v.dump());
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      SM_CHECK(u <= uint64_t(std::numeric_limits<T>::max()), what << " " << u << " is too large");
      return T(u);
    }
    const int64_t i = v.get<int64_t>();
    SM_CHECK(i >= 0 || std::is_signed_v<T>, what << " must not be negative, got " << i);
    SM_CHECK(!std::is_signed_v<T> || (i >= int64_t(std::numeric_limits<T>::min()) && i <= int64_t(std::numeric_limits<T>::max())),
             what << " " << i << " is out of range");
    return T(i);
  } else if constexpr (std::is_floating_point_v<T>) {
    SM_CHECK(v.is_number() && std::isfinite(v.get<double>()), what << " must be a number, got " << v.dump());
    return T(v.get<double>());
  } else if constexpr (std::is_same_v<T, std::string>) {
    SM_CHECK(v.is_string(), what << " must be a string, got " << v.dump());
    return v.get<std::string>();
  } else if constexpr (IsVector<T>::value) {
    SM_CHECK(v.is_array(), what << " must be an array, got " << v.dump());
    T out;
    for (size_t i = 0; i < v.size(); ++i)
      out.push_back(convert<typename T::value_type>(v[i], what + "[" + std::to_string(i) + "]"));
    return out;
  } else {
    static_assert(std::is_same_v<T, nlohmann::json>, "json_field: unsupported type");
    return v;
  }
}

}  // namespace json_field_detail

// j[key] as T; `fallback` when the key is absent or null. `where` prefixes the message
// ("config.json: stages.detect").
template <class T>
T json_field(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& where) {
  SM_CHECK(j.is_object(), where << ": must be a JSON object");
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return json_field_detail::convert<T>(j[key], where + ": '" + key + "'");
}

// j[key] as T; the key must be present.
template <class T>
T json_field_required(const nlohmann::json& j, const std::string& key, const std::string& where) {
  SM_CHECK(j.is_object(), where << ": must be a JSON object");
  SM_CHECK(j.contains(key) && !j[key].is_null(), where << ": '" << key << "' is missing");
  return json_field_detail::convert<T>(j[key], where + ": '" + key + "'");
}

// Refuses a key of the object `j` that is not in `known` (a misspelt "refine_pases" must not fall
// back silently to a default), naming it: "<where>: unknown key '<key>'".
inline void json_keys_check(const nlohmann::json& j, const std::vector<std::string>& known, const std::string& where) {
  SM_CHECK(j.is_object(), where << ": must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (const std::string& k : known) ok = ok || k == key;
    SM_CHECK(ok, where << ": unknown key '" << key << "'");
  }
}

}  // namespace sm
