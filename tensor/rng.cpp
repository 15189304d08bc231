// PCG32 and the portable uniform/normal transforms (see rng.h).
#include "tensor/rng.h"

#include <cstdio>

#include <cmath>

namespace sm {

uint64_t hash_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_string(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string hash_string_hex(const std::string& s) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash_string(s)));
  return text;
}

Rng::Rng(uint64_t seed, uint64_t stream) {
  seed_material_ = hash_mix(seed ^ hash_mix(stream));
  // PCG32 seeding as in the reference: inc must be odd.
  s_.inc = (hash_mix(stream + 0x632be59bd9b4e019ULL) << 1u) | 1u;
  s_.state = 0;
  next_u32();
  s_.state += hash_mix(seed);
  next_u32();
}

uint32_t Rng::next_u32() {
  uint64_t old = s_.state;
  s_.state = old * 6364136223846793005ULL + s_.inc;
  uint32_t xorshifted = uint32_t(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = uint32_t(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

uint64_t Rng::next_u64() { return (uint64_t(next_u32()) << 32) | next_u32(); }

double Rng::uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

uint64_t Rng::below(uint64_t n) {
  SM_CHECK(n > 0, "Rng::below(0)");
  // Rejection sampling (Lemire-free, simple): draw until under the largest multiple of n.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

double portable_log(double x) {
  SM_CHECK(x > 0.0, "portable_log of a non-positive number");
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln x = e ln2 + 2 atanh(z), z = (m-1)/(m+1).
  int e;
  double m = std::frexp(x, &e);  // m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  double z = (m - 1.0) / (m + 1.0);  // |z| <= 0.1716
  double z2 = z * z, term = z, sum = 0.0;
  for (int k = 1; k <= 41; k += 2) {  // z^2 < 0.0295: 21 terms reach well below 1 ulp
    sum += term / double(k);
    term *= z2;
  }
  constexpr double ln2 = 0.69314718055994530942;
  return double(e) * ln2 + 2.0 * sum;
}

double Rng::normal() {
  // Marsaglia polar method: (u, v) uniform in the unit disc, s = u^2 + v^2,
  // then u*sqrt(-2 ln s / s) and v*sqrt(-2 ln s / s) are independent N(0,1).
  if (s_.has_spare) {
    s_.has_spare = false;
    return s_.spare;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double f = std::sqrt(-2.0 * portable_log(s) / s);  // sqrt is correctly rounded (IEEE 754)
  s_.spare = v * f;
  s_.has_spare = true;
  return u * f;
}

Rng Rng::derive(const std::string& name, uint64_t index) const {
  return Rng(hash_mix(seed_material_ ^ hash_string(name)), index);
}

Rng::State Rng::state() const { return s_; }
void Rng::state_set(const State& s) { s_ = s; }

void tensor_fill_uniform(Tensor& t, Rng& rng, double lo, double hi) {
  check_cpu("tensor_fill_uniform", t);
  dispatch_float(t.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = T(rng.uniform(lo, hi));
  });
}

void tensor_fill_normal(Tensor& t, Rng& rng, double mean, double stddev) {
  check_cpu("tensor_fill_normal", t);
  dispatch_float(t.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = T(rng.normal(mean, stddev));
  });
}

}  // namespace sm
