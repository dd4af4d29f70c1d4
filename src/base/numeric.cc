#include "base/numeric.h"

#include <array>

namespace dsv3 {

uint8_t f32_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;
  // Search the 127 non-negative finite codes, which are ordered by value; pick the nearest,
  // ties to the even code. Only the generator and trainer export use this, so clarity wins.
  const float* t = e4m3_table();
  int lo = 0, hi = 0x7e;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (t[mid] <= a) lo = mid; else hi = mid;
  }
  const float dlo = a - t[lo], dhi = t[hi] - a;
  int pick = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) ? hi : lo);
  if (a <= t[lo]) pick = lo;
  return sign | uint8_t(pick);
}

const float* e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = e4m3_to_f32(uint8_t(i));
    return t;
  }();
  return table.data();
}

}  // namespace dsv3
