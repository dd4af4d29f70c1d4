#include "kernels/isa.h"

#include "kernels/simd/table.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(DSV3_X86_KERNELS)
#include <cpuid.h>
#endif

namespace dsv3::kernels {
namespace {

#if defined(DSV3_X86_KERNELS)
// F16C is not among the names every compiler's __builtin_cpu_supports knows: ask CPUID.
bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
// AVX512_BF16 is CPUID leaf 7, subleaf 1, EAX bit 5; AVX512_VBMI leaf 7, subleaf 0, ECX bit 1.
bool has_bf16_vbmi() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & (1u << 1))) return false;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
}
#endif

bool supported(Isa isa) {
#if defined(DSV3_X86_KERNELS)
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && supported(Isa::Avx2);
    case Isa::Avx512Bf16: {
      static const bool ok = supported(Isa::Avx512) && has_bf16_vbmi() && bf16_products_match_twin(kAvx512Bf16Kernels);
      return ok;
    }
  }
  return false;
#else
  return isa == Isa::Scalar;
#endif
}

Isa initial() {
  if (const char* env = std::getenv("DSV3_ISA")) {
    for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
      if (std::strcmp(env, isa_name(i)) == 0 && supported(i)) return i;
  }
  return best_isa();
}

std::atomic<bool> g_reference{false};

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{initial()};
  return isa;
}

}  // namespace

Isa best_isa() {
  if (supported(Isa::Avx512Bf16)) return Isa::Avx512Bf16;
  if (supported(Isa::Avx512)) return Isa::Avx512;
  if (supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

Isa active_isa() { return current().load(std::memory_order_relaxed); }

bool set_isa(Isa isa) {
  if (!supported(isa)) return false;
  current().store(isa);
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512bf16";
  }
  return "?";
}

void set_reference_kernels(bool on) { g_reference.store(on); }
bool reference_kernels() { return g_reference.load(); }

const SimdKernels* active_simd() {
#if defined(DSV3_X86_KERNELS)
  switch (active_isa()) {
    case Isa::Avx512Bf16: return &kAvx512Bf16Kernels;
    case Isa::Avx512: return &kAvx512Kernels;
    case Isa::Avx2: return &kAvx2Kernels;
    case Isa::Scalar: return nullptr;
  }
#endif
  return nullptr;
}

}  // namespace dsv3::kernels
