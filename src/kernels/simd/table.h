// The per-ISA kernel tables: simd/avx2.cc and simd/avx512.cc each compile the templates in
// simd/*-inl.h with their own target flags (one set per ISA, CMakeLists.txt) and export one
// table of entry points. The generic code (matmul.cc, attention.cc, gemm.cc, probes.cc)
// calls through the table of the active ISA, after the CPUID check in isa.cc.
#pragma once

#include <cstdint>

#include "kernels/adamw.h"
#include "kernels/weight_matrix.h"

namespace dsv3::kernels {

// Scratch the caller provides to rows(): kSimdRowsScratch * w.cols floats (a panel of
// kSimdPanelRows decoded rows plus up to kSimdTokChunk tokens of block-scaled activations);
// t_rows needs w.cols floats.
constexpr int kSimdPanelRows = 4;
constexpr int kSimdTokChunk = 64;
constexpr int kSimdRowsScratch = kSimdPanelRows + kSimdTokChunk;
// Up to this many tokens the products read the stored weights in place (no panel).
constexpr int64_t kSimdDirectMaxTokens = 16;
// Rows of the training GEMM's register tile (its columns: two vectors).
constexpr int kGemmMr = 6;
// Rows of the BF16 training GEMM's tile (its columns: 32, two vectors of 16 fp32 sums).
constexpr int kGemmBf16Mr = 12;
// The training GEMMs cut K into blocks of this many (even, so that BF16 pairs never straddle
// two): a packed B panel stays in L1/L2 while the rows of A stream past it, and both GEMMs
// add each block's sums to C the same way.
constexpr int64_t kGemmKc = 256;

using GemmBf16PackFn = void (*)(const float* src, int64_t s_idx, int64_t s_k, int64_t K, int n, int width,
                                uint32_t* dst);
using GemmBf16PackE4m3Fn = void (*)(const uint8_t* src, int64_t s_idx, int64_t s_k, int64_t K, int n, int width,
                                    uint32_t* dst);
using GemmBf16TileFn = void (*)(int64_t P, int64_t block, const uint32_t* ap, const uint32_t* bp, const float* sa,
                                const float* sb, float* c, int64_t ldc, int m, int n, bool add);

struct SimdKernels {
  void (*rows)(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T, float* y,
               int64_t y_stride, float* scratch);
  //! The BF16 product (bf16.h) of rows [r0, r1); scratch: matmul_scratch(w) floats.
  void (*rows_bf16)(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                    float* y, int64_t y_stride, float* scratch);
  //! The FP8 product (`--numerics fp8`) of rows [r0, r1); nullptr where the tier has none
  //! (the portable twin runs then). scratch: matmul_scratch(w) floats.
  void (*rows_fp8)(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                   float* y, int64_t y_stride, float* scratch);
  void (*t_rows)(const WeightMatrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride, int64_t T,
                 float* y, int64_t y_stride, float* scratch);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*exp_n)(float* x, int64_t n);  // x[i] = exp_poly_ref(x[i])
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*latent_scores)(const float* qa, int64_t qa_stride, const float* qr, int64_t qr_stride, int64_t H, int64_t R,
                        int64_t rope, const float* row, float scale, float* out, int64_t out_stride);
  void (*weighted_rows)(const float* p, int64_t p_stride, int64_t H, const float* const* rows, int64_t n, int64_t c0,
                        int64_t c1, float* out, int64_t out_stride);
  //! BF16 absorbed attention over one block of latent rows (kernels/attention.h).
  void (*latent_block_bf16)(const uint16_t* q, int64_t H, int64_t Dp, int64_t R, const uint16_t* const* x, int64_t nb,
                            float scale, float* s, uint16_t* pb, float* m, float* l, float* acc);
  //! C[kGemmMr, gemm_nr] = (add ? C : 0) + A [kGemmMr, K] (element (r, k) at
  //! a[r * a_row + k * a_k], rows >= m not read past row m - 1) * packed B [K][gemm_nr].
  void (*gemm_tile)(int64_t K, const float* a, int64_t a_row, int64_t a_k, const float* bp, float* c, int64_t ldc,
                    int m, int n, bool add);
  //! The BF16 training GEMM (simd/gemm_bf16-inl.h); nullptr where the tier has no
  //! vdpbf16ps. pack: element (i, k) at src[i * s_idx + k * s_k] for i < n, rounded to BF16,
  //! as dst[pair][width] dwords (k in the high half, k + 1 in the low). tile: C[kGemmBf16Mr, 32]
  //! (add ? C : 0) + packed A [P][kGemmBf16Mr] x packed B [P][32], added to C every `block`
  //! pairs, each block times its scales (sa per row, sb per column) when sa is given.
  GemmBf16PackFn gemm_bf16_pack;
  GemmBf16PackE4m3Fn gemm_bf16_pack_e4m3;  // the same from e4m3 bytes (Fp8Matrix::bytes)
  GemmBf16TileFn gemm_bf16_tile;
  //! Training's low-precision operands (kernels/quant.h): m[i] = max(m[i], |x[i]|);
  //! out[i] = e4m3(x[i] / s[i]) (* s[i] if rescale); out[i] = x[i] rounded to BF16.
  void (*abs_max)(const float* x, int64_t n, float* m);
  float (*abs_max_of)(const float* x, int64_t n);  // max(0, max |x[i]|), NaNs ignored
  void (*e4m3_scaled)(const float* x, const float* s, int64_t n, bool rescale, float* out);
  void (*bf16_round_n)(const float* x, int64_t n, float* out);
  //! e4m3 values <-> their one-byte encoding (bytes -> values times s).
  void (*e4m3_bytes)(const float* x, int64_t n, uint8_t* bytes);
  void (*e4m3_from_bytes)(const uint8_t* bytes, int64_t n, float s, float* out);
  //! The trainer's optimizer step (kernels/adamw.h).
  void (*adamw_update)(const AdamWStep& s, float* w, const float* grad, float* m, float* v, int64_t n);
  float (*fma_probe)(int64_t iters);  // 12 chains of N-wide FMAs per iteration
  float (*bf16_probe)(int64_t iters);  // 12 chains of 32-wide BF16 dot-product steps
  int lanes;                          // N
  int gemm_nr;                        // 2 * N
};

//! The table of the active ISA (isa.h), or nullptr when the portable code runs (scalar ISA,
//! or a build without x86 kernels).
const SimdKernels* active_simd();

//! Whether k's BF16 products give the twin's bits on this CPU (matmul.cc): order-sensitive
//! random sums with subnormals, BF16 and FP8 weights, direct and panel paths. isa.cc offers
//! the native BF16 tier only where they do, so a CPU whose vdpbf16ps rounds or orders its
//! sums otherwise gets the emulated tier (the same bits, fewer instructions saved).
bool bf16_products_match_twin(const SimdKernels& k);

#if defined(DSV3_X86_KERNELS)
extern const SimdKernels kAvx2Kernels;
extern const SimdKernels kAvx512Kernels;
extern const SimdKernels kAvx512Bf16Kernels;
#endif

}  // namespace dsv3::kernels
