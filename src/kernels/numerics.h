// How the forward pass computes its matrix products (`--numerics`).
//  - fp32: fp32 activations times the stored weights decoded exactly to fp32, fp32 sums. The
//    exact reference (`--exact`, `logits`, `grad`, the goldens).
//  - bf16: what DeepSeek's own inference does by default (see ARCHITECTURE.md, "Numerics of
//    the official inference code"): each GEMM input rounded to BF16, products exact, fp32
//    sums (vdpbf16ps where the CPU has it), and the latent cache rounded to BF16. Norms,
//    softmax, router, RoPE and attention scores stay fp32.
#pragma once

#include <string>

namespace dsv3::kernels {

enum class Numerics { Fp32, Bf16 };

const char* numerics_name(Numerics n);
//! "fp32" or "bf16"; throws dsv3::Error naming the accepted words otherwise.
Numerics parse_numerics(const std::string& s);

}  // namespace dsv3::kernels
