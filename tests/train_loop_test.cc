// The pieces of the training loop one at a time: schedules at their key steps, AdamW
// against hand-computed values, clipping, the gate-bias sign rule and MaxVio, the data
// sampler's determinism and resumability, the run config's errors, the loss plot.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "test_util.h"
#include "train_test_util.h"
#include "train/data.h"
#include "train/load_balance.h"
#include "train/optimizer.h"
#include "train/plot_svg.h"
#include "train/run_config.h"
#include "train/schedule.h"

namespace dsv3::train {
namespace {

using testutil::error_of;

TEST(TrainSchedule, WarmupThenCosine) {
  ScheduleChoice s;
  s.type = ScheduleType::Cosine;
  s.warmup_steps = 10;
  s.min_lr_ratio = 0.1;
  const int64_t total = 111;
  EXPECT_DOUBLE_EQ(learning_rate(s, 2.0, 0, total), 0.2);
  EXPECT_DOUBLE_EQ(learning_rate(s, 2.0, 4, total), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 2.0, 9, total), 2.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 2.0, 10, total), 2.0);
  EXPECT_NEAR(learning_rate(s, 2.0, 60, total), 1.1, 1e-12);  // half way: (2 + 0.2) / 2
  EXPECT_NEAR(learning_rate(s, 2.0, 110, total), 0.2, 1e-12);  // the last step reaches the floor
  for (int64_t i = 11; i < total; ++i) EXPECT_LT(learning_rate(s, 2.0, i, total), learning_rate(s, 2.0, i - 1, total));
}

TEST(TrainSchedule, ConstantThenDecayAsInTheReport) {
  ScheduleChoice s;
  s.type = ScheduleType::ConstantThenDecay;
  s.warmup_steps = 10;
  s.min_lr_ratio = 0.1;
  s.decay_start = 0.5;
  s.decay_end = 0.9;
  s.tail_start = 0.95;
  s.tail_lr_ratio = 0.03;
  const int64_t total = 1000;
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 4, total), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 100, total), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 499, total), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 500, total), 1.0);
  EXPECT_NEAR(learning_rate(s, 1.0, 700, total), 0.55, 1e-12);
  EXPECT_GT(learning_rate(s, 1.0, 899, total), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 900, total), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 949, total), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 950, total), 0.03);
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 999, total), 0.03);
  s.type = ScheduleType::Constant;
  EXPECT_DOUBLE_EQ(learning_rate(s, 1.0, 999, total), 1.0);
}

TEST(TrainSchedule, MtpWeightAndBiasSpeed) {
  MtpChoice m;  // 0.3 then 0.1
  m.switch_at = 0.5;
  EXPECT_DOUBLE_EQ(mtp_weight(m, 4, 10), 0.3);
  EXPECT_DOUBLE_EQ(mtp_weight(m, 5, 10), 0.1);
  BalanceChoice b;
  b.gamma_stop_at = 0.9;
  EXPECT_DOUBLE_EQ(bias_update_speed(b, 0, 10), 0.001);
  EXPECT_DOUBLE_EQ(bias_update_speed(b, 8, 10), 0.001);
  EXPECT_DOUBLE_EQ(bias_update_speed(b, 9, 10), 0.0);
  EXPECT_DOUBLE_EQ(balance_weight(b), 1e-4);
  b.mode = BalanceMode::Classic;
  EXPECT_DOUBLE_EQ(bias_update_speed(b, 0, 10), 0.0);  // classic mode never moves the biases
  EXPECT_DOUBLE_EQ(balance_weight(b), 0.01);
}

struct Tensors {
  std::vector<std::string> names{"norm", "w"};
  std::vector<std::vector<int64_t>> shapes{{2}, {1, 1}};
  std::vector<std::vector<float>> value{{1.0f, -2.0f}, {0.5f}}, grad{{0, 0}, {0}};
  std::vector<ParamView> views() {
    return {ParamView{&names[0], &shapes[0], value[0].data(), grad[0].data()},
            ParamView{&names[1], &shapes[1], value[1].data(), grad[1].data()}};
  }
};

TEST(TrainOptimizer, AdamWMatchesHandComputedSteps) {
  OptimizerChoice o;
  o.lr = 0.01;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.eps = 1e-8;
  o.weight_decay = 0.1;
  Tensors t;
  AdamW opt(o);
  opt.attach(t.views());
  // Step 1: bias-corrected m/sqrt(v) is sign(g), so each weight moves by lr; the 1x1 matrix
  // also decays by lr*wd = 0.1%, the 1-D tensor does not.
  t.grad = {{0.1f, -0.2f}, {0.3f}};
  opt.step(t.views(), 0.01);
  EXPECT_NEAR(t.value[0][0], 0.990000001, 1e-7);
  EXPECT_NEAR(t.value[0][1], -1.990000001, 1e-7);
  EXPECT_NEAR(t.value[1][0], 0.4895, 1e-7);
  // Step 2 (worked by hand: m = 0.029, v = 4.999e-5, mhat = 0.15263, vhat = 0.025008).
  t.grad = {{0.2f, 0.0f}, {-0.1f}};
  opt.step(t.views(), 0.01);
  EXPECT_EQ(opt.steps(), 2);
  EXPECT_NEAR(t.value[0][0], 0.980348181, 1e-6);
  EXPECT_NEAR(t.value[0][1], -1.983299418, 1e-6);
  EXPECT_NEAR(t.value[1][0], 0.485008315, 1e-6);
}

// Split over a pool, in runs that cut parameters apart, a step gives the bits of the
// single-threaded one.
TEST(TrainOptimizer, AdamWStepIsTheSameOnAPool) {
  std::vector<std::string> names = {"big", "norm"};
  std::vector<std::vector<int64_t>> shapes = {{300, 701}, {333}};
  for (const bool bf16 : {false, true}) {
    std::vector<std::vector<float>> value(2), grad(2);
    for (size_t k = 0; k < 2; ++k) {
      const size_t n = size_t(shapes[k][0] * (shapes[k].size() > 1 ? shapes[k][1] : 1));
      for (size_t i = 0; i < n; ++i) {
        value[k].push_back(std::sin(float(i) * 0.37f + float(k)));
        grad[k].push_back(std::cos(float(i) * 1.3f) * 0.01f);
      }
    }
    auto a_value = value, b_value = value;
    auto views = [&](std::vector<std::vector<float>>& v) {
      return std::vector<ParamView>{ParamView{&names[0], &shapes[0], v[0].data(), grad[0].data()},
                                    ParamView{&names[1], &shapes[1], v[1].data(), grad[1].data()}};
    };
    OptimizerChoice o;
    o.weight_decay = 0.1;
    AdamW a(o, bf16), b(o, bf16);
    a.attach(views(a_value));
    b.attach(views(b_value));
    ThreadPool pool(3);
    for (int s = 0; s < 3; ++s) {
      a.step(views(a_value), 1e-3);
      b.step(views(b_value), 1e-3, &pool);
    }
    EXPECT_EQ(a_value, b_value);
    EXPECT_EQ(a.m(0), b.m(0));
    EXPECT_EQ(a.v(1), b.v(1));
    EXPECT_NE(a_value, value);
  }
}

TEST(TrainOptimizer, ClippingScalesToTheGlobalNorm) {
  Tensors t;
  t.grad = {{3.0f, 0.0f}, {4.0f}};  // norm 5
  EXPECT_DOUBLE_EQ(clip_grad_norm(t.views(), 10.0), 5.0);  // under the limit: untouched
  EXPECT_FLOAT_EQ(t.grad[0][0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(t.views(), 1.0), 5.0);   // returns the norm before clipping
  EXPECT_FLOAT_EQ(t.grad[0][0], 0.6f);
  EXPECT_FLOAT_EQ(t.grad[1][0], 0.8f);
  EXPECT_NEAR(global_grad_norm(t.views()), 1.0, 1e-6);
  t.grad = {{3.0f, 0.0f}, {4.0f}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(t.views(), 0.0), 5.0);   // 0 disables clipping
  EXPECT_FLOAT_EQ(t.grad[1][0], 4.0f);
}

TEST(TrainOptimizer, WeightDecaySkipsOneDimensionalTensors) {
  Tensors t;
  EXPECT_FALSE(decays(t.views()[0]));
  EXPECT_TRUE(decays(t.views()[1]));
}

TEST(TrainBalance, BiasMovesTowardsTheMeanBySign) {
  std::vector<float> b = {0.0f, 0.5f, -0.25f, 0.0f};
  update_gate_bias(b, {10, 2, 4, 8}, 0.001);  // mean 6
  EXPECT_FLOAT_EQ(b[0], -0.001f);              // overloaded: less attractive
  EXPECT_FLOAT_EQ(b[1], 0.501f);               // underloaded: more attractive
  EXPECT_FLOAT_EQ(b[2], -0.249f);
  EXPECT_FLOAT_EQ(b[3], -0.001f);
  std::vector<float> c = {1.0f, 2.0f, 3.0f};
  update_gate_bias(c, {5, 5, 5}, 0.5);         // balanced (at the mean exactly): no move
  EXPECT_EQ(c, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  update_gate_bias(c, {6, 3, 6}, 0.0);         // gamma 0 (end of training): frozen
  EXPECT_EQ(c, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_CONTAINS(error_of([&] { update_gate_bias(c, {1, 2}, 0.1); }), "3 experts");
}

TEST(TrainBalance, MaxViolation) {
  EXPECT_DOUBLE_EQ(max_violation({10, 2, 4, 8}), 10.0 / 6.0 - 1.0);
  EXPECT_DOUBLE_EQ(max_violation({3, 3, 3}), 0.0);
  EXPECT_DOUBLE_EQ(max_violation({0, 0}), 0.0);
  EXPECT_DOUBLE_EQ(max_violation({4, 0, 0, 0}), 3.0);
}

std::vector<int32_t> ramp(int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = i;
  return v;
}

TEST(TrainData, SamplerIsDeterministicAndCoversEachEpoch) {
  const std::vector<int32_t> tokens = ramp(1000);
  WindowSampler a(tokens, 9, 42), b(tokens, 9, 42), c(tokens, 9, 43);
  const int64_t n = a.windows_per_epoch();
  EXPECT_GE(n, 123);  // (1000 - offset - 9) / 8 + 1 with offset < 8
  std::vector<int32_t> sa, sb, sc;
  for (int64_t i = 0; i < n; ++i) {
    sa.push_back(*a.next());
    sb.push_back(*b.next());
    sc.push_back(*c.next());
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  // One epoch visits every window once, all on the epoch's stride grid, all inside the text.
  const std::set<int32_t> uniq(sa.begin(), sa.end());
  EXPECT_EQ(int64_t(uniq.size()), n);
  for (int32_t x : sa) {
    EXPECT_EQ((x - sa[0]) % 8, 0);
    EXPECT_LE(x + 9, 1000);
  }
  EXPECT_FALSE(std::is_sorted(sa.begin(), sa.end()));
  // The next epoch is a new order.
  std::vector<int32_t> next;
  for (int64_t i = 0; i < a.windows_per_epoch(); ++i) next.push_back(*a.next());
  EXPECT_EQ(a.state().epoch, 1);
  EXPECT_NE(next, sa);
}

TEST(TrainData, RestoredSamplerContinuesTheSameStream) {
  const std::vector<int32_t> tokens = ramp(500);
  WindowSampler a(tokens, 17, 5);
  for (int i = 0; i < 45; ++i) a.next();  // past the first epoch's end (about 30 windows)
  const WindowSampler::State st = a.state();
  EXPECT_EQ(st.epoch, 1);
  WindowSampler b(tokens, 17, 999);  // seeded differently: the state alone decides
  b.restore(st);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next()) << "window " << i;
}

TEST(TrainData, TooShortTextIsAnError) {
  const std::vector<int32_t> tokens = ramp(8);
  EXPECT_CONTAINS(error_of([&] { WindowSampler(tokens, 9, 1); }), "fewer than one window");
  WindowSampler exact(tokens, 8, 1);  // exactly one window
  EXPECT_EQ(exact.next(), tokens.data());
  EXPECT_EQ(exact.next(), tokens.data());
  EXPECT_EQ(eval_windows(ramp(20), 6, 10).size(), 3u);
}

TEST(TrainData, FilesAreTokenizedWithBosEosHeldOutAndCached) {
  testutil::TempDir dir("traindata");
  testutil::write_byte_tokenizer(dir.str());
  std::ofstream(dir / "a.txt") << "abc";
  std::ofstream(dir / "b.txt") << "de";
  DataChoice d;
  d.tokenizer = dir.str();
  d.train_files = {dir / "a.txt", dir / "b.txt"};
  d.eval_fraction = 0.34;  // floor(9 * 0.34) = 3 tokens held out
  const TokenData t = load_token_data(d, dir / "cache");
  EXPECT_FALSE(t.from_cache);
  EXPECT_EQ(t.train, (std::vector<int32_t>{256, 'a', 'b', 'c', 257, 256}));
  EXPECT_EQ(t.eval, (std::vector<int32_t>{'d', 'e', 257}));
  const TokenData again = load_token_data(d, dir / "cache");
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.train, t.train);
  EXPECT_EQ(again.eval, t.eval);
  std::ofstream(dir / "b.txt") << "dx";  // new text: a new cache entry
  const TokenData changed = load_token_data(d, dir / "cache");
  EXPECT_FALSE(changed.from_cache);
  EXPECT_EQ(changed.eval[1], 'x');
  d.eval_files = {dir / "a.txt"};
  d.add_bos = false;
  const TokenData sep = load_token_data(d, "");
  EXPECT_EQ(sep.eval, (std::vector<int32_t>{'a', 'b', 'c', 257}));
  EXPECT_EQ(sep.train.size(), 7u);  // nothing held out when eval files are given
  d.train_files = {dir / "missing.txt"};
  EXPECT_CONTAINS(error_of([&] { load_token_data(d, ""); }), "missing.txt");
}

const char* kGoodConfig = R"({
  "model": {"type": "debug_moe_bigram", "dim": 8},
  "data": {"tokenizer": "tok", "train_files": ["a.txt", "/abs/b.txt"]},
  "seq_len": 16, "batch_size": 2, "grad_accum": 3, "tokens": 1000,
  "optimizer": {"lr": 0.01},
  "schedule": {"type": "constant_then_decay", "warmup_steps": 2},
  "out_dir": "run"
})";

TEST(TrainConfig, ParsesResolvesPathsAndRoundTrips) {
  const RunConfig c = RunConfig::parse(kGoodConfig, "run.json", "/base");
  EXPECT_EQ(c.data.tokenizer, "/base/tok");
  EXPECT_EQ(c.data.train_files, (std::vector<std::string>{"/base/a.txt", "/abs/b.txt"}));
  EXPECT_EQ(c.out_dir, "/base/run");
  EXPECT_EQ(c.model.dim, 8);
  EXPECT_EQ(c.tokens_per_step(), 96);
  EXPECT_EQ(c.total_steps(), 11);  // ceil(1000 / 96)
  EXPECT_EQ(c.schedule.type, ScheduleType::ConstantThenDecay);
  EXPECT_DOUBLE_EQ(c.balance.alpha, 1e-4);  // report defaults
  EXPECT_DOUBLE_EQ(c.balance.gamma, 0.001);
  EXPECT_DOUBLE_EQ(c.mtp.weight, 0.3);
  const RunConfig again = RunConfig::parse(c.to_json(), "saved", "");
  EXPECT_EQ(again.to_json(), c.to_json());
}

std::string config_error(const std::string& patch_key, const std::string& patch_value) {
  nlohmann::json j = nlohmann::json::parse(kGoodConfig);
  nlohmann::json* at = &j;
  std::string key = patch_key;
  for (size_t dot; (dot = key.find('.')) != std::string::npos; key = key.substr(dot + 1)) at = &(*at)[key.substr(0, dot)];
  (*at)[key] = nlohmann::json::parse(patch_value);
  return error_of([&] { RunConfig::parse(j.dump(), "run.json", "/base"); });
}

TEST(TrainConfig, ErrorsNameTheKey) {
  EXPECT_CONTAINS(config_error("lr", "0.1"), "run.json: unknown key 'lr'");
  EXPECT_CONTAINS(config_error("optimizer.betas", "[0.9, 0.95]"), "unknown key 'optimizer.betas'");
  EXPECT_CONTAINS(config_error("seq_len", "\"long\""), "'seq_len' must be an integer");
  EXPECT_CONTAINS(config_error("seq_len", "0"), "'seq_len' must be in [1, ");
  EXPECT_CONTAINS(config_error("optimizer.beta2", "1.5"), "'optimizer.beta2' must be in");
  EXPECT_CONTAINS(config_error("optimizer.lr", "-1"), "'optimizer.lr' must be in");
  EXPECT_CONTAINS(config_error("schedule.type", "\"linear\""),
                  "'schedule.type' must be one of constant, cosine, constant_then_decay; got \"linear\"");
  EXPECT_CONTAINS(config_error("balance.mode", "\"none\""), "'balance.mode' must be one of aux_free, classic");
  EXPECT_CONTAINS(config_error("data.add_bos", "1"), "'data.add_bos' must be true or false");
  EXPECT_CONTAINS(config_error("data.train_files", "[1]"), "'data.train_files' must hold only strings");
  EXPECT_CONTAINS(config_error("schedule", "3"), "'schedule' must be a JSON object");
  EXPECT_CONTAINS(config_error("steps", "5"), "exactly one of 'steps' or 'tokens'");
  EXPECT_CONTAINS(config_error("data.tokenizer", "\"\""), "'data.tokenizer' is required");
  EXPECT_CONTAINS(config_error("schedule.decay_end", "0.1"), "decay_start <= decay_end <= tail_start");
  EXPECT_CONTAINS(config_error("model.type", "\"deepseek_v3\""), "exactly one of 'model.config'");
  EXPECT_CONTAINS(config_error("model.preset", "\"tiny\""), "apply only to model.type deepseek_v3");
  EXPECT_CONTAINS(config_error("export_dtype", "\"fp16\""), "'export_dtype' must be one of bf16, fp8, f32, none");
  EXPECT_CONTAINS(error_of([] { RunConfig::parse("{\"seq_len\": ", "bad.json", ""); }), "bad.json: not valid JSON");
  EXPECT_CONTAINS(error_of([] { RunConfig::load("/nonexistent/run.json"); }), "cannot open run config '/nonexistent/run.json'");
}

TEST(TrainPlot, TicksAndSvg) {
  const std::vector<double> unit = nice_ticks(0, 1, 5);
  ASSERT_EQ(unit.size(), 6u);
  for (size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], 0.2 * double(i), 1e-12);
  EXPECT_FALSE(std::signbit(unit[0]));  // labelled "0", not "-0"
  const std::vector<double> t = nice_ticks(3.3, 7.9, 6);
  EXPECT_EQ(t.front(), 4.0);
  EXPECT_EQ(t.back(), 7.0);
  LossCurves c;
  c.train = {{1, 5.0}, {2, 4.0}, {3, 3.5}};
  c.eval = {{3, 3.8}};
  const std::string svg = loss_plot_svg(c, "run <a&b>");
  EXPECT_CONTAINS(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
  EXPECT_CONTAINS(svg, "run &lt;a&amp;b&gt;");
  EXPECT_CONTAINS(svg, "<polyline");
  EXPECT_CONTAINS(svg, "<circle");
  EXPECT_CONTAINS(svg, "train loss");
  EXPECT_CONTAINS(svg, "eval loss");
  EXPECT_CONTAINS(svg, "</svg>");
  EXPECT_CONTAINS(loss_plot_svg(LossCurves{}, "x"), "no losses logged");
}

}  // namespace
}  // namespace dsv3::train
