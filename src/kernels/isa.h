// Which implementation the kernels run: the instruction set of the fast kernels, chosen once at
// run time so one binary runs on any x86-64 (and builds elsewhere, where only the portable path
// exists), or the scalar reference twins of every kernel. DSV3_ISA=scalar|avx2|avx512|avx512bf16
// in the environment, or set_isa(), forces an ISA (the tests run every one). avx512bf16 is
// AVX-512 plus AVX512_BF16 and AVX512_VBMI: the native BF16 products; the others emulate
// them with the same results.
#pragma once

namespace dsv3::kernels {

enum class Isa { Scalar, Avx2, Avx512, Avx512Bf16 };

//! The best ISA this CPU and build support.
Isa best_isa();
//! The ISA in use (DSV3_ISA if set and supported, else best_isa()).
Isa active_isa();
//! Forces an ISA; returns false (and changes nothing) if the CPU or build lacks it.
bool set_isa(Isa isa);
const char* isa_name(Isa isa);

//! Routes every kernel to its scalar twin (`--reference-kernels`: the whole model on the
//! twins, to bisect a numerical difference). Process-wide, like the ISA.
void set_reference_kernels(bool on);
bool reference_kernels();

}  // namespace dsv3::kernels
