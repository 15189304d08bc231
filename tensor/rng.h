// Our own random numbers: PCG32 (O'Neill 2014) for bits, our own uniform and normal transforms
// (Marsaglia polar method on a log built from + - * / only), so one master seed gives the same
// numbers on every machine, compiler and standard library. Named child streams (init, shuffle,
// augmentation, ...) come from one master seed through derive().
#pragma once
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace sm {

class Rng {
 public:
  struct State {
    uint64_t state = 0, inc = 0;
    bool has_spare = false;
    double spare = 0.0;
  };

  explicit Rng(uint64_t seed = 0, uint64_t stream = 0);

  uint32_t next_u32();
  uint64_t next_u64();
  double uniform();                    // [0, 1), 53 random bits
  double uniform(double lo, double hi);  // [lo, hi)
  double normal();                     // N(0, 1)
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  uint64_t below(uint64_t n);          // uniform integer in [0, n), unbiased
  bool bernoulli(double p) { return uniform() < p; }

  // An independent stream named by `name` (and an optional index, e.g. an epoch).
  Rng derive(const std::string& name, uint64_t index = 0) const;

  State state() const;
  void state_set(const State& s);

 private:
  uint64_t seed_material_ = 0;  // what derive() hashes from (fixed at construction)
  State s_;
};

uint64_t hash_mix(uint64_t x);  // splitmix64 finaliser
uint64_t hash_string(const std::string& s);  // FNV-1a 64
std::string hash_string_hex(const std::string& s);  // hash_string as 16 lowercase hex digits
// ln(x) for x > 0 from + - * / and frexp/ldexp only: identical on every platform.
double portable_log(double x);

void tensor_fill_uniform(Tensor& t, Rng& rng, double lo, double hi);
void tensor_fill_normal(Tensor& t, Rng& rng, double mean, double stddev);

}  // namespace sm
