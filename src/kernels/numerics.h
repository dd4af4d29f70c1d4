// How the forward pass computes its matrix products (`--numerics`).
//  - fp32: fp32 activations times the stored weights decoded exactly to fp32, fp32 sums. The
//    exact reference (`--exact`, `logits`, `grad`, the goldens).
//  - bf16: what DeepSeek's own inference does by default (see ARCHITECTURE.md, "Numerics of
//    the official inference code"): each GEMM input rounded to BF16, products exact, fp32
//    sums (vdpbf16ps where the CPU has it), and the latent cache rounded to BF16. Norms,
//    softmax, router, RoPE and attention scores stay fp32.
//  - fp8: as the official `gemm_impl = "fp8"`: products with FP8 weights take the activation
//    quantized per token and 128 channels to e4m3 (scale = max(amax, 1e-4) / 448, a power of
//    two with scale_fmt ue8m0), exact e4m3 x e4m3 products in fp32, each 128-block's sum
//    scaled by both scales; every other product (BF16 weights, the absorbed attention's kv_b
//    as the official absorb mode does) and the rest as in bf16.
#pragma once

#include <string>

namespace dsv3::kernels {

enum class Numerics { Fp32, Bf16, Fp8 };

const char* numerics_name(Numerics n);
//! "fp32", "bf16" or "fp8"; throws dsv3::Error naming the accepted words otherwise.
Numerics parse_numerics(const std::string& s);

}  // namespace dsv3::kernels
