// `dsv3 grad`: the training loss of one token sequence and the gradient of every trainable
// parameter, in fp32, written as safetensors (checked against scripts/grad_reference.py).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/error.h"
#include "io/safetensors.h"
#include "train/model_grad.h"
#include "train/teacher.h"

namespace dsv3::app {
namespace {

struct GradOptions {
  std::string model, tokens, out, mask, teacher;
  double mtp_weight = 0.0, balance_alpha = 0.0, kd_weight = 0.5, kd_temperature = 2.0;
  int repeat = 1;
};

void run(const GradOptions& o, ThreadPool& pool) {
  const std::vector<int32_t> tokens = parse_token_list(o.tokens);
  if (o.mtp_weight < 0 || o.balance_alpha < 0) fail("--mtp-weight and --balance-alpha must be >= 0");
  train::TrainModel model = train::TrainModel::from_checkpoint(o.model, pool);
  if (o.repeat < 1) fail("--repeat must be >= 1");
  train::LossWeights lw{o.mtp_weight, o.balance_alpha};
  std::vector<uint8_t> mask;
  if (!o.mask.empty()) {
    for (int32_t m : parse_token_list(o.mask)) {
      if (m != 0 && m != 1) fail("--mask takes 0s and 1s, got ", m);
      mask.push_back(uint8_t(m));
    }
    if (mask.size() + 1 != tokens.size())
      fail("--mask needs one entry per predicted token (", tokens.size() - 1, "), got ", mask.size());
    lw.target_mask = mask.data();
  }
  std::optional<train::Teacher> teacher;
  std::optional<Tokenizer> student_tok;
  if (!o.teacher.empty()) {
    if (o.kd_weight < 0 || o.kd_weight > 1 || o.kd_temperature <= 0)
      fail("--kd-weight must be in [0, 1] and --kd-temperature positive");
    if (std::filesystem::exists(std::filesystem::path(o.model) / "tokenizer.json")) student_tok.emplace(Tokenizer::load(o.model));
    teacher.emplace(o.teacher, student_tok ? &*student_tok : nullptr, model.vocab_size(), pool);
    lw.teacher_logits = teacher->logits(tokens.data(), int64_t(tokens.size()));
    lw.kd_weight = o.kd_weight;
    lw.kd_temperature = o.kd_temperature;
  }
  train::LossTerms s;
  double secs = 0;
  for (int r = 0; r < o.repeat; ++r) {  // timing runs: the fastest counts, the gradient is one run's
    model.zero_grad();
    const auto t0 = std::chrono::steady_clock::now();
    s = model.loss_and_grad(tokens.data(), int64_t(tokens.size()), lw, 1.0f);
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    secs = r == 0 ? t : std::min(secs, t);
  }

  io::SafetensorsWriter w;
  const float loss = float(s.loss);
  w.add_bytes("loss", io::DType::F32, {1}, &loss, 4);
  const std::vector<train::ParamView> params = model.params();
  for (const train::ParamView& p : params) w.add_bytes(*p.name, io::DType::F32, *p.shape, p.grad, p.numel() * 4);
  w.write(o.out);
  std::printf("loss %.6f (main CE %.6f, MTP CE %.6f, balance %.6f%s) over %lld tokens in %.3f s (%.1f tokens/s)\n",
              s.loss, s.main_ce, s.mtp_ce, s.balance,
              teacher ? (", KL to the teacher " + std::to_string(s.kd)).c_str() : "", (long long)tokens.size(), secs,
              double(tokens.size()) / secs);
  std::printf("wrote %s (%zu gradients)\n", o.out.c_str(), params.size());
}

}  // namespace

void add_grad(CLI::App& app, AppContext& ctx) {
  auto o = std::make_shared<GradOptions>();
  CLI::App* cmd = app.add_subcommand("grad", "write the training loss and every parameter gradient (F32) of a sequence");
  cmd->add_option("--model", o->model, "model folder (config.json + safetensors)")->required();
  cmd->add_option("--tokens", o->tokens, "comma-separated token ids, e.g. 0,17,345 (at least 2)")->required();
  cmd->add_option("--out", o->out, "output .safetensors file")->required();
  cmd->add_option("--mtp-weight", o->mtp_weight, "lambda of the MTP loss (needs an MTP layer and 3 tokens)");
  cmd->add_option("--balance-alpha", o->balance_alpha, "alpha of the sequence-wise balance loss");
  cmd->add_option("--repeat", o->repeat, "run the step N times and report the fastest (timing)");
  cmd->add_option("--mask", o->mask,
                  "comma-separated 0/1 per predicted token (T - 1 entries): which predictions the losses count");
  cmd->add_option("--teacher", o->teacher, "distill from this checkpoint folder (same vocabulary): the main loss "
                                           "becomes (1 - w) CE + w T^2 KL(teacher_T || student_T)");
  cmd->add_option("--kd-weight", o->kd_weight, "w of --teacher (default 0.5)");
  cmd->add_option("--kd-temperature", o->kd_temperature, "T of --teacher (default 2)");
  cmd->callback([o, &ctx] { run(*o, ctx.pool()); });
}

}  // namespace dsv3::app
