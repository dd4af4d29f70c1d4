#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/simd/table.h"

namespace dsv3::kernels {
namespace {

void check_tiles(int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c) {
  if (rows < 0 || cols < 0 || tile_r < 1 || tile_c < 1)
    fail("fp8_fake_quant: bad shape [", rows, ", ", cols, "] or tile ", tile_r, "x", tile_c);
}

float tile_scale(float amax) { return amax > 0.0f ? amax / kE4m3Max : 1.0f; }

// The portable versions of the SIMD entry points (the scalar ISA and the loop tails).
void abs_max_portable(const float* x, int64_t n, float* m) {
  for (int64_t i = 0; i < n; ++i) m[i] = std::max(m[i], std::fabs(x[i]));
}
float abs_max_of_portable(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}
void e4m3_scaled_portable(const float* x, const float* s, int64_t n, bool rescale, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = e4m3_nearest(x[i] / s[i]);
    out[i] = rescale ? q * s[i] : q;
  }
}

// fn(i0, i1) over [0, n) in runs of `chunk` elements, split over ctx's pool from 4 runs on
// (fewer do not repay waking the workers). For element-wise work: any split gives the same bits.
template <class F>
void over_chunks(Context& ctx, int64_t n, int64_t chunk, F&& fn) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  auto run = [&](int, int64_t c0, int64_t c1) { fn(c0 * chunk, std::min(n, c1 * chunk)); };
  if (chunks < 4) run(0, 0, chunks);
  else ctx.pool().parallel_for(chunks, run);
}

void e4m3_from_bytes_portable(const uint8_t* bytes, int64_t n, float s, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = e4m3_from_byte(bytes[i]) * s;
}

// fp8_fake_quant (scales null: out = codes x scale) and fp8_quant (out = codes, scales kept).
void quant_ref(const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c, float* out,
               float* scales) {
  check_tiles(rows, cols, tile_r, tile_c);
  const int64_t ncols = (cols + tile_c - 1) / tile_c;
  for (int64_t r0 = 0; r0 < rows; r0 += tile_r)
    for (int64_t c0 = 0; c0 < cols; c0 += tile_c) {
      const int64_t r1 = std::min(rows, r0 + tile_r), c1 = std::min(cols, c0 + tile_c);
      float amax = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
      const float s = tile_scale(amax);
      if (scales) scales[(r0 / tile_r) * ncols + c0 / tile_c] = s;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          const float q = e4m3_nearest(x[r * cols + c] / s);
          out[r * cols + c] = scales ? q : q * s;
        }
    }
}

// bytes given (fp8_quant_bytes): each row's codes are made in a row of scratch and written
// as their bytes while in L1 (out unused).
void quant(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c, float* out,
           float* scales, uint8_t* bytes = nullptr) {
  check_tiles(rows, cols, tile_r, tile_c);
  if (reference_kernels()) {
    if (!bytes) return quant_ref(x, rows, cols, tile_r, tile_c, out, scales);
    std::vector<float> codes(size_t(rows * cols));
    quant_ref(x, rows, cols, tile_r, tile_c, codes.data(), scales);
    return e4m3_to_bytes_ref(codes.data(), rows * cols, bytes);
  }
  const SimdKernels* k = active_simd();
  auto abs_max = k ? k->abs_max : abs_max_portable;
  auto e4m3_scaled = k ? k->e4m3_scaled : e4m3_scaled_portable;
  auto to_bytes = k ? k->e4m3_bytes : e4m3_to_bytes_ref;
  auto max_of = k ? k->abs_max_of : abs_max_of_portable;
  // Elements [i, i + n) of x quantized with scales s: into out, or through `row` into bytes.
  const auto scaled = [&](int64_t i, const float* s, int64_t n, std::vector<float>& row) {
    if (!bytes) return e4m3_scaled(x + i, s, n, scales == nullptr, out + i);
    row.resize(size_t(n));
    e4m3_scaled(x + i, s, n, false, row.data());
    to_bytes(row.data(), n, bytes + i);
  };
  const int64_t bands = (rows + tile_r - 1) / tile_r, ncols = (cols + tile_c - 1) / tile_c;
  if (tile_r == 1) {
    // Row tiles (activations along the reduction): each tile's max and its quantization
    // while the tile is in L1, one pass over memory.
    auto run_rows = [&](int, int64_t r0, int64_t r1) {
      std::vector<float> s(static_cast<size_t>(std::min(tile_c, cols))), row;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c0 = 0; c0 < cols; c0 += tile_c) {
          const int64_t n = std::min(tile_c, cols - c0);
          const float sc = tile_scale(max_of(x + r * cols + c0, n));
          std::fill(s.begin(), s.begin() + n, sc);
          if (scales) scales[r * ncols + c0 / tile_c] = sc;
          scaled(r * cols + c0, s.data(), n, row);
        }
    };
    if (rows * cols < 16384) run_rows(0, 0, rows);
    else ctx.pool().parallel_for(rows, run_rows);
    return;
  }
  // A band of tile_r rows at a time: the column maxima first (vectorized along the row),
  // then each tile's scale spread over its columns, then the rows quantized.
  auto run = [&](int, int64_t b0, int64_t b1) {
    std::vector<float> m(static_cast<size_t>(cols)), s(static_cast<size_t>(cols)), row;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * tile_r, r1 = std::min(rows, r0 + tile_r);
      std::fill(m.begin(), m.end(), 0.0f);
      for (int64_t r = r0; r < r1; ++r) abs_max(x + r * cols, cols, m.data());
      for (int64_t c0 = 0; c0 < cols; c0 += tile_c) {
        const int64_t c1 = std::min(cols, c0 + tile_c);
        float amax = 0;
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, m[size_t(c)]);
        const float sc = tile_scale(amax);
        std::fill(s.begin() + c0, s.begin() + c1, sc);
        if (scales) scales[b * ncols + c0 / tile_c] = sc;
      }
      for (int64_t r = r0; r < r1; ++r) scaled(r * cols, s.data(), cols, row);
    }
  };
  if (rows * cols < 16384) run(0, 0, bands);  // too small to repay waking the workers
  else ctx.pool().parallel_for(bands, run);
}

}  // namespace

void fp8_fake_quant_ref(const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c, float* out) {
  quant_ref(x, rows, cols, tile_r, tile_c, out, nullptr);
}
void fp8_quant_ref(const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c, float* codes,
                   float* scales) {
  quant_ref(x, rows, cols, tile_r, tile_c, codes, scales);
}
void fp8_fake_quant(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c,
                    float* out) {
  quant(ctx, x, rows, cols, tile_r, tile_c, out, nullptr);
}
void fp8_quant(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c,
               float* codes, float* scales) {
  quant(ctx, x, rows, cols, tile_r, tile_c, codes, scales);
}

void e4m3_to_bytes_ref(const float* codes, int64_t n, uint8_t* bytes) {
  for (int64_t i = 0; i < n; ++i) bytes[i] = e4m3_byte(codes[i]);
}

void fp8_quant_bytes(Context& ctx, const float* x, int64_t rows, int64_t cols, int64_t tile_r, int64_t tile_c,
                     uint8_t* bytes, float* scales) {
  quant(ctx, x, rows, cols, tile_r, tile_c, nullptr, scales, bytes);
}

void fp8_dequant_ref(const uint8_t* bytes, const float* scales, int64_t rows, int64_t cols, int64_t tile_r,
                     int64_t tile_c, float* out) {
  check_tiles(rows, cols, tile_r, tile_c);
  const int64_t ncols = (cols + tile_c - 1) / tile_c;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float v = e4m3_from_byte(bytes[r * cols + c]);
      out[r * cols + c] = scales ? v * scales[(r / tile_r) * ncols + c / tile_c] : v;
    }
}

void e4m3_to_bytes(Context& ctx, const float* codes, int64_t n, uint8_t* bytes) {
  if (reference_kernels()) return e4m3_to_bytes_ref(codes, n, bytes);
  const SimdKernels* k = active_simd();
  auto pack = k ? k->e4m3_bytes : e4m3_to_bytes_ref;
  over_chunks(ctx, n, 16384, [&](int64_t i0, int64_t i1) { pack(codes + i0, i1 - i0, bytes + i0); });
}

void fp8_dequant(Context& ctx, const uint8_t* bytes, const float* scales, int64_t rows, int64_t cols, int64_t tile_r,
                 int64_t tile_c, float* out) {
  check_tiles(rows, cols, tile_r, tile_c);
  if (reference_kernels()) return fp8_dequant_ref(bytes, scales, rows, cols, tile_r, tile_c, out);
  const SimdKernels* k = active_simd();
  auto unpack = k ? k->e4m3_from_bytes : e4m3_from_bytes_portable;
  const int64_t ncols = (cols + tile_c - 1) / tile_c;
  // Row by row, one tile's run of columns at a time under its scale.
  auto run = [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c0 = 0; c0 < cols; c0 += tile_c) {
        const float s = scales ? scales[(r / tile_r) * ncols + c0 / tile_c] : 1.0f;
        unpack(bytes + r * cols + c0, std::min(tile_c, cols - c0), s, out + r * cols + c0);
      }
  };
  if (rows * cols < 16384) run(0, 0, rows);
  else ctx.pool().parallel_for(rows, run);
}

void bf16_fake_round_ref(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_value(bf16_round(x[i]));
}

void bf16_fake_round(Context& ctx, const float* x, int64_t n, float* out) {
  if (reference_kernels()) return bf16_fake_round_ref(x, n, out);
  const SimdKernels* k = active_simd();
  auto round = k ? k->bf16_round_n : bf16_fake_round_ref;
  over_chunks(ctx, n, 4096, [&](int64_t i0, int64_t i1) { round(x + i0, i1 - i0, out + i0); });
}

}  // namespace dsv3::kernels
