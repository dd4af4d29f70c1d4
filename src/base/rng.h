// A small, fully specified random generator (SplitMix64). Unlike <random> distributions its
// output is the same on every platform and standard library, which generated checkpoints
// and seeded tests depend on.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace dsv3 {

class Rng {
 public:
  //! Rng(r.state()) continues exactly where r stands, which is how training resumes.
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t state() const { return state_; }
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
  //! Uniform integer in [0, n) for n > 0 (Lemire's multiply-shift; bias below 2^-32 for
  //! the sizes used here).
  uint64_t below(uint64_t n) { return uint64_t((static_cast<unsigned __int128>(next()) * n) >> 64); }
  //! Standard normal (Box-Muller over two 53-bit uniforms), for weight initialization.
  double normal() {
    const double u1 = (double(next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    const double u2 = double(next() >> 11) * (1.0 / 9007199254740992.0);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

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
