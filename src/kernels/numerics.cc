#include "kernels/numerics.h"

#include "base/error.h"

namespace dsv3::kernels {

const char* numerics_name(Numerics n) {
  switch (n) {
    case Numerics::Fp32: return "fp32";
    case Numerics::Bf16: return "bf16";
    case Numerics::Fp8: return "fp8";
  }
  return "?";
}

Numerics parse_numerics(const std::string& s) {
  if (s == "fp32") return Numerics::Fp32;
  if (s == "bf16") return Numerics::Bf16;
  if (s == "fp8") return Numerics::Fp8;
  fail("unknown numerics '", s, "' (expected bf16, fp8 or fp32)");
}

}  // namespace dsv3::kernels
