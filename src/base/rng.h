// A small, fully specified random generator (SplitMix64). Unlike <random> distributions its
// output is the same on every platform and standard library, which generated checkpoints
// and seeded tests depend on.
#pragma once

#include <cstdint>
#include <string_view>

namespace dsv3 {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  //! Uniform in [0, 1) with 24 random bits.
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }
  //! Uniform in [-a, a).
  float symmetric(float a) { return (2.0f * uniform() - 1.0f) * a; }

 private:
  uint64_t state_;
};

//! FNV-1a, to derive per-tensor seeds from names (order-independent generation).
inline uint64_t hash_name(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

}  // namespace dsv3
