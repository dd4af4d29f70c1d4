// Training's FP8 and BF16 modes (train/low_precision.h): the Linear layers' three GEMMs
// against the recipe computed independently (per-tile scales, e4m3 codes, exact products,
// blockwise scaling), a TrainModel step in each mode against the fp32 step, BF16 AdamW
// moments, the run-config key, and a resumed fp8 run equal to an uninterrupted one.
#include <cmath>
#include <fstream>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "kernels/bf16.h"
#include "kernels/quant.h"
#include "model/testgen.h"
#include "test_util.h"
#include "train/low_precision.h"
#include "train/model_grad.h"
#include "train/optimizer.h"
#include "threading/pool.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace dsv3::train {
namespace {

using kernels::Numerics;

std::vector<float> randn(size_t n, uint64_t seed, float scale) {
  std::mt19937 rng{uint32_t(seed)};
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  for (size_t i = 0; i < n; i += 37) v[i] *= 20.0f;  // outliers, so tiles get different scales
  return v;
}

// The recipe's GEMM written out: C[M,N] = sum over 128-blocks of k of
// sa(i, block) * sb(j, block) * sum_k code_a(i,k) code_b(j,k), in double, where A [M,K] is
// tiled tile_a along (rows, k) and B [N,K] tile_b; codes are e4m3 values, scales amax/448.
struct Quantized {
  std::vector<double> code, scale;  // code per element, scale per element (its tile's)
};
Quantized quantize_independently(const std::vector<float>& x, int64_t rows, int64_t cols, int64_t tr, int64_t tc) {
  Quantized q{std::vector<double>(x.size()), std::vector<double>(x.size())};
  for (int64_t r0 = 0; r0 < rows; r0 += tr)
    for (int64_t c0 = 0; c0 < cols; c0 += tc) {
      float amax = 0;
      for (int64_t r = r0; r < std::min(rows, r0 + tr); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + tc); ++c) amax = std::max(amax, std::fabs(x[size_t(r * cols + c)]));
      const float s = amax > 0 ? amax / 448.0f : 1.0f;
      for (int64_t r = r0; r < std::min(rows, r0 + tr); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + tc); ++c) {
          q.code[size_t(r * cols + c)] = kernels::e4m3_nearest(x[size_t(r * cols + c)] / s);
          q.scale[size_t(r * cols + c)] = s;
        }
    }
  return q;
}
// C[i][j] = sum_k A(i,k) B(j,k) with A, B given as [rows, K] (codes times scales).
std::vector<double> recipe_gemm(const Quantized& a, const Quantized& b, int64_t M, int64_t N, int64_t K) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const size_t ai = size_t(i * K + k), bj = size_t(j * K + k);
        s += a.code[ai] * b.code[bj] * a.scale[ai] * b.scale[bj];
      }
      c[size_t(i * N + j)] = s;
    }
  return c;
}
std::vector<float> transpose(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> t(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = x[size_t(r * cols + c)];
  return t;
}
// |got - want| within fp32 summation error of the sums' magnitudes.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5 * scale + 1e-30) << what << " [" << i << "]";
}

TEST(Fp8Linear, ThreeGemmsFollowTheReportsRecipe) {
  const int64_t T = 150, in = 300, out = 260;  // partial tiles along every dimension
  const std::vector<float> x = randn(size_t(T * in), 1, 1.0f), W = randn(size_t(out * in), 2, 0.05f),
                           dy = randn(size_t(T * out), 3, 0.01f);
  kernels::Context ctx(testutil::pool());
  ctx.set_numerics(Numerics::Fp8);
  std::vector<float> y(size_t(T * out)), dx(size_t(T * in), 0.0f), dW(size_t(out * in), 0.0f);
  std::vector<float> Wp(size_t(prepared_size(out, in)));
  prepare_weight(ctx, W.data(), out, in, Wp.data());
  block_linear_forward(ctx, x.data(), T, Wp.data(), out, in, y.data());
  block_linear_backward(ctx, x.data(), dy.data(), T, Wp.data(), out, in, dx.data(), dW.data());

  // Fprop: x per 1x128 tile, W per 128x128 block.
  expect_close(y, recipe_gemm(quantize_independently(x, T, in, 1, 128), quantize_independently(W, out, in, 128, 128), T, out, in),
               "y");
  // Dgrad: dy per 1x128 along out; W^T's blocks are W's.
  expect_close(dx,
               recipe_gemm(quantize_independently(dy, T, out, 1, 128),
                           quantize_independently(transpose(W, out, in), in, out, 128, 128), T, in, out),
               "dx");
  // Wgrad: dy per 128 tokens of a channel; x's Fprop form requantized per 128 tokens.
  std::vector<float> xq(x.size());
  kernels::fp8_fake_quant_ref(x.data(), T, in, 1, 128, xq.data());
  expect_close(dW,
               recipe_gemm(quantize_independently(transpose(dy, T, out), out, T, 1, 128),
                           quantize_independently(transpose(xq, T, in), in, T, 1, 128), out, in, T),
               "dW");

  // And it is not the fp32 product: quantization moves it by about 2^-5 relative.
  std::vector<float> y32(y.size());
  ctx.set_numerics(Numerics::Fp32);
  linear_forward(ctx, x.data(), T, W.data(), out, in, y32.data());
  double diff = 0, mag = 0;
  for (size_t i = 0; i < y.size(); ++i) diff += std::fabs(y[i] - y32[i]), mag += std::fabs(y32[i]);
  EXPECT_GT(diff / mag, 1e-3);
  EXPECT_LT(diff / mag, 0.1);
}

// A Linear input kept in FP8 (KeptInput: one byte per code and the 1x128 tiles' scales, as
// the report caches Linear inputs for backward) gives Fprop and Wgrad the same bits as the
// fp32 activation, at about a quarter of the bytes; fp32 mode keeps the activation itself.
TEST(Fp8Linear, KeptFp8InputGivesTheSameBitsAsTheActivation) {
  const int64_t T = 150, in = 300, out = 260;
  const std::vector<float> x = randn(size_t(T * in), 4, 1.0f), W = randn(size_t(out * in), 5, 0.05f),
                           dy = randn(size_t(T * out), 6, 0.01f);
  kernels::Context ctx(testutil::pool());
  ctx.set_numerics(Numerics::Fp8);
  std::vector<float> Wp(size_t(prepared_size(out, in)));
  prepare_weight(ctx, W.data(), out, in, Wp.data());
  KeptInput<float> kept;
  float* buf = kept.buffer(ctx, T, in);
  std::copy(x.begin(), x.end(), buf);
  kept.seal(ctx);
  EXPECT_TRUE(kept.x.empty());
  EXPECT_EQ(kept.bytes(), size_t(T * in) + size_t(T * 3) * sizeof(float));  // 3 tiles of 128 per row
  ASSERT_NE(kept.input().fp8, nullptr);
  EXPECT_THROW(kept.fp32(), Error);  // only the FP8 form is kept

  std::vector<float> y(size_t(T * out)), dW(size_t(out * in), 0.0f), y_ref(y.size()), dW_ref(dW.size(), 0.0f);
  block_linear_forward(ctx, kept.input(), T, Wp.data(), out, in, y.data());
  block_linear_backward(ctx, kept.input(), dy.data(), T, Wp.data(), out, in, static_cast<float*>(nullptr), dW.data());
  block_linear_forward(ctx, x.data(), T, Wp.data(), out, in, y_ref.data());
  block_linear_backward(ctx, x.data(), dy.data(), T, Wp.data(), out, in, static_cast<float*>(nullptr), dW_ref.data());
  EXPECT_EQ(y, y_ref);
  EXPECT_EQ(dW, dW_ref);

  ctx.set_numerics(Numerics::Fp32);
  buf = kept.buffer(ctx, T, in);
  EXPECT_EQ(buf, kept.x.data());
  EXPECT_TRUE(kept.fp8.bytes.empty());
  EXPECT_EQ(kept.input().fp8, nullptr);
  EXPECT_EQ(kept.bytes(), size_t(T * in) * sizeof(float));
  ctx.set_numerics(Numerics::Fp8);
  EXPECT_EQ(kept.buffer(ctx, T, in, /*keep_fp32=*/true), kept.x.data());
  EXPECT_EQ(kept.fp32(), kept.x.data());
}

TEST(Bf16Linear, GemmsTakeBf16RoundedInputs) {
  const int64_t T = 40, in = 70, out = 50;
  const std::vector<float> x = randn(size_t(T * in), 4, 1.0f), W = randn(size_t(out * in), 5, 0.05f),
                           dy = randn(size_t(T * out), 6, 0.01f);
  kernels::Context ctx(testutil::pool());
  ctx.set_numerics(Numerics::Bf16);
  std::vector<float> y(size_t(T * out)), dx(size_t(T * in), 0.0f), dW(size_t(out * in), 0.0f), Wp(size_t(prepared_size(out, in)));
  prepare_weight(ctx, W.data(), out, in, Wp.data());
  block_linear_forward(ctx, x.data(), T, Wp.data(), out, in, y.data());
  block_linear_backward(ctx, x.data(), dy.data(), T, Wp.data(), out, in, dx.data(), dW.data());
  auto r = [](float v) { return double(kernels::bf16_value(kernels::bf16_round(v))); };
  std::vector<double> wy(y.size(), 0.0), wdx(dx.size(), 0.0), wdw(dW.size(), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        const double xv = r(x[size_t(t * in + i)]), wv = r(W[size_t(o * in + i)]), g = r(dy[size_t(t * out + o)]);
        wy[size_t(t * out + o)] += xv * wv;
        wdx[size_t(t * in + i)] += g * wv;
        wdw[size_t(o * in + i)] += g * xv;
      }
  expect_close(y, wy, "y");
  expect_close(dx, wdx, "dx");
  expect_close(dW, wdw, "dW");
}

// The output heads and eh_proj: fp32 in fp32 mode, BF16 inputs in bf16 and fp8 modes (the
// report's BF16 baseline precision), from the master weights as they are.
TEST(OuterLinear, Fp32InFp32ModeBf16InputsOtherwise) {
  const int64_t T = 33, in = 64, out = 90;
  const std::vector<float> x = randn(size_t(T * in), 7, 1.0f), W = randn(size_t(out * in), 8, 0.05f),
                           dy = randn(size_t(T * out), 9, 0.01f);
  auto r = [](const std::vector<float>& v) {
    std::vector<float> o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = kernels::bf16_value(kernels::bf16_round(v[i]));
    return o;
  };
  for (Numerics n : {Numerics::Fp32, Numerics::Bf16, Numerics::Fp8}) {
    SCOPED_TRACE(int(n));
    kernels::Context ctx(testutil::pool()), ref(testutil::pool());
    ctx.set_numerics(n);
    const bool low = n != Numerics::Fp32;
    const std::vector<float> xr = low ? r(x) : x, Wr = low ? r(W) : W, dyr = low ? r(dy) : dy;
    std::vector<float> y(size_t(T * out)), dx(size_t(T * in), 0.5f), dW(W.size(), 0.25f);
    std::vector<float> wy = y, wdx = dx, wdW = dW;
    outer_linear_forward(ctx, x.data(), T, W.data(), out, in, y.data());
    outer_linear_backward(ctx, x.data(), dy.data(), T, W.data(), out, in, dx.data(), dW.data());
    linear_forward(ref, xr.data(), T, Wr.data(), out, in, wy.data());
    linear_backward<float>(ref, xr.data(), dyr.data(), T, Wr.data(), out, in, wdx.data(), wdW.data());
    EXPECT_EQ(y, wy);
    EXPECT_EQ(dx, wdx);
    EXPECT_EQ(dW, wdW);
  }
}

// One loss_and_grad of the tiny preset in each precision.
struct Step {
  double loss;
  std::vector<float> grad;  // every parameter's gradient, concatenated
};
Step step_in(Numerics n) {
  model::ModelConfig cfg = model::test_model_config("tiny");
  TrainModel m = TrainModel::init(cfg, 5, 0.02, testutil::pool());
  m.set_precision(n);
  EXPECT_EQ(m.precision(), n);
  std::vector<int32_t> toks(40);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t((i * 37 + 11) % size_t(cfg.vocab_size));
  m.zero_grad();
  Step s;
  s.loss = m.loss_and_grad(toks.data(), int64_t(toks.size()), LossWeights{0.3, 1e-4}, 1.0f).loss;
  for (const ParamView& p : m.params()) s.grad.insert(s.grad.end(), p.grad, p.grad + p.numel());
  return s;
}

TEST(TrainPrecision, Fp8AndBf16StepsStayWithinQuantizationErrorOfFp32) {
  const Step f32 = step_in(Numerics::Fp32), f8 = step_in(Numerics::Fp8), b16 = step_in(Numerics::Bf16);
  for (const Step* s : {&f8, &b16}) {
    EXPECT_NE(s->loss, f32.loss);  // the mode is in effect
    EXPECT_NEAR(s->loss, f32.loss, 2e-3 * f32.loss);
    double dot = 0, n1 = 0, n2 = 0;
    for (size_t i = 0; i < f32.grad.size(); ++i) {
      dot += double(s->grad[i]) * f32.grad[i];
      n1 += double(s->grad[i]) * s->grad[i];
      n2 += double(f32.grad[i]) * f32.grad[i];
    }
    EXPECT_GT(dot / std::sqrt(n1 * n2), 0.97) << (s == &f8 ? "fp8" : "bf16");  // the same direction
  }
}

// fp8 mode keeps the decoder blocks' Linear inputs in FP8: the step reports fewer bytes kept
// for the backward pass, in the blocks only (the heads' activations stay fp32).
TEST(TrainPrecision, Fp8StepKeepsLessForBackward) {
  LossTerms t[2];
  int i = 0;
  for (Numerics n : {Numerics::Fp32, Numerics::Fp8}) {
    model::ModelConfig cfg = model::test_model_config("tiny");
    TrainModel m = TrainModel::init(cfg, 5, 0.02, testutil::pool());
    m.set_precision(n);
    std::vector<int32_t> toks(40);
    for (size_t k = 0; k < toks.size(); ++k) toks[k] = int32_t((k * 37 + 11) % size_t(cfg.vocab_size));
    m.zero_grad();
    t[i++] = m.loss_and_grad(toks.data(), int64_t(toks.size()), LossWeights{0.3, 1e-4}, 1.0f);
  }
  ASSERT_GT(t[0].kept_block_bytes, 0);
  EXPECT_LT(t[0].kept_block_bytes, t[0].kept_bytes);
  EXPECT_LT(t[1].kept_block_bytes, t[0].kept_block_bytes * 9 / 10);
  EXPECT_EQ(t[0].kept_bytes - t[0].kept_block_bytes, t[1].kept_bytes - t[1].kept_block_bytes);
}

// Experts and heads run one per core on serial contexts when there are enough of them, else
// split across the cores: the loss and every gradient are the same bits for any thread count.
TEST(TrainPrecision, StepsAreTheSameForAnyThreadCount) {
  for (Numerics n : {Numerics::Fp32, Numerics::Fp8}) {
    std::vector<double> losses;
    std::vector<std::vector<float>> grads;
    for (int threads : {1, 2, 3, 5}) {
      ThreadPool pool(threads);
      TrainModel m = TrainModel::init(model::test_model_config("tiny"), 5, 0.02, pool);
      m.set_precision(n);
      std::vector<int32_t> toks(40);
      for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t((i * 53 + 7) % 250);
      m.zero_grad();
      losses.push_back(m.loss_and_grad(toks.data(), int64_t(toks.size()), LossWeights{0.3, 1e-4}, 1.0f).loss);
      grads.emplace_back();
      for (const ParamView& p : m.params()) grads.back().insert(grads.back().end(), p.grad, p.grad + p.numel());
    }
    for (size_t i = 1; i < losses.size(); ++i) {
      EXPECT_EQ(losses[i], losses[0]) << i;
      EXPECT_EQ(grads[i], grads[0]) << i;
    }
  }
}

TEST(TrainPrecision, PreparedWeightsFollowTheMasters) {
  TrainModel m = TrainModel::init(model::test_model_config("tiny"), 5, 0.02, testutil::pool());
  m.set_precision(Numerics::Fp8);
  const std::vector<int32_t> toks = {3, 9, 27, 81, 243, 217, 139, 161, 1, 3, 9};
  const double before = m.loss_only(toks.data(), int64_t(toks.size()), LossWeights{}).loss;
  EXPECT_EQ(m.loss_only(toks.data(), int64_t(toks.size()), LossWeights{}).loss, before);
  for (const ParamView& p : m.params())
    if (p.name->find("layers.0.self_attn.o_proj") != std::string::npos)
      for (uint64_t i = 0; i < p.numel(); ++i) p.value[i] *= 3.0f;
  EXPECT_NE(m.loss_only(toks.data(), int64_t(toks.size()), LossWeights{}).loss, before);
}

TEST(TrainPrecision, Bf16MomentsHoldBf16Values) {
  std::vector<std::string> names = {"w"};
  std::vector<std::vector<int64_t>> shapes = {{3, 5}};
  std::vector<float> value = randn(15, 8, 1.0f), grad = randn(15, 9, 0.3f);
  std::vector<ParamView> params = {ParamView{&names[0], &shapes[0], value.data(), grad.data()}};
  AdamW opt(OptimizerChoice{}, /*bf16_moments=*/true);
  opt.attach(params);
  opt.step(params, 1e-3);
  opt.step(params, 1e-3);
  for (size_t i = 0; i < 15; ++i) {
    for (float v : {opt.m(0)[i], opt.v(0)[i]}) EXPECT_EQ(v, kernels::bf16_value(kernels::bf16_round(v))) << i;
    EXPECT_NE(opt.v(0)[i], 0.0f);
  }
}

TEST(TrainPrecision, RunConfigKey) {
  const std::string base = R"({"model": {"preset": "tiny"}, "data": {"tokenizer": "t", "train_files": "a.txt"},
                               "steps": 2, "out_dir": "o")";
  EXPECT_EQ(RunConfig::parse(base + "}", "run.json", "/tmp").precision, "fp32");
  EXPECT_EQ(RunConfig::parse(base + R"(, "precision": "fp8"})", "run.json", "/tmp").precision, "fp8");
  EXPECT_CONTAINS(testutil::error_of([&] { RunConfig::parse(base + R"(, "precision": "fp16"})", "run.json", "/tmp"); }),
                  "precision");
  EXPECT_CONTAINS(testutil::error_of([&] {
                    RunConfig::parse(R"({"model": {"type": "debug_moe_bigram"}, "data": {"tokenizer": "t",
                                         "train_files": "a"}, "steps": 2, "out_dir": "o", "precision": "bf16"})",
                                     "run.json", "/tmp");
                  }),
                  "applies to model.type deepseek_v3 only");
}

TEST(TrainPrecision, ResumedFp8RunEqualsUninterruptedRunBitForBit) {
  testutil::TempDir dir("fp8resume");
  testutil::write_byte_tokenizer(dir.str());
  std::ofstream(dir / "corpus.txt") << testutil::corpus_text(4, 400);
  auto config = [&](const std::string& out) {
    RunConfig r;
    r.source = "test";
    r.model.preset = "tiny";
    r.data.tokenizer = dir.str();
    r.data.train_files = {dir / "corpus.txt"};
    r.data.eval_sequences = 2;
    r.seq_len = 16;
    r.batch_size = 2;
    r.steps = 6;
    r.optimizer.lr = 0.01;
    r.eval_interval = 3;
    r.precision = "fp8";
    r.export_dtype = "none";
    r.out_dir = dir / out;
    r.validate();
    return r;
  };
  const TokenData data = load_token_data(config("x").data, "");
  auto model = [&] {
    TrainModel m = TrainModel::init(model::test_model_config("tiny"), 1, 0.02, testutil::pool());
    m.set_precision(Numerics::Fp8);
    return m;
  };
  TrainModel a = model();
  const TrainResult full = run_training(config("full"), a, data, TrainerOptions{"", 0, false});
  TrainModel b = model();
  const TrainResult first = run_training(config("half"), b, data, TrainerOptions{"", 3, false});
  TrainModel c = model();
  const TrainResult second = run_training(config("half"), c, data, TrainerOptions{first.state_dir, 0, false});
  ASSERT_EQ(full.losses.size(), 6u);
  ASSERT_EQ(second.losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(first.losses[i], full.losses[i]) << i;
    EXPECT_EQ(second.losses[i], full.losses[3 + i]) << i;
  }
  EXPECT_EQ(second.eval_loss, full.eval_loss);
}

}  // namespace
}  // namespace dsv3::train
