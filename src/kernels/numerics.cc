#include "kernels/numerics.h"

#include "base/error.h"

namespace dsv3::kernels {

const char* numerics_name(Numerics n) { return n == Numerics::Bf16 ? "bf16" : "fp32"; }

Numerics parse_numerics(const std::string& s) {
  if (s == "fp32") return Numerics::Fp32;
  if (s == "bf16") return Numerics::Bf16;
  fail("unknown numerics '", s, "' (expected bf16 or fp32)");
}

}  // namespace dsv3::kernels
