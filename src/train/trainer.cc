#include "train/trainer.h"


#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "base/error.h"
#include "kernels/probes.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint_export.h"
#include "train/load_balance.h"
#include "train/data_parallel.h"
#include "train/metrics_log.h"
#include "train/model_factory.h"
#include "train/optimizer.h"
#include "base/progress.h"
#include "train/chat_data.h"
#include "train/passkey_data.h"
#include "train/teacher.h"
#include "train/plot_svg.h"
#include "train/schedule.h"
#include "train/step_profile.h"
#include "train/train_flops.h"
#include "train/train_state.h"

namespace dsv3::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// answer: the stream's answer flags (packed chat data: only answers count), or empty.
EvalRecord evaluate(Trainable& model, const std::vector<const int32_t*>& windows, int64_t window, int64_t step,
                    const std::vector<int32_t>& stream, const std::vector<uint8_t>& answer) {
  // A model with an MTP module runs it too (its loss weight does not change the main loss),
  // so the eval line also shows how well it predicts the token after next: what MTP
  // speculative decoding would accept.
  const model::ModelConfig* cfg = model.hf_config();
  LossWeights w;
  if (cfg && cfg->num_nextn_predict_layers > 0 && window >= 3) w.mtp_weight = 1.0;
  double ce = 0, mtp_ce = 0;
  int64_t tokens = 0, correct = 0, mtp_correct = 0, mtp_tokens = 0;
  for (const int32_t* win : windows) {
    if (!answer.empty()) w.target_mask = answer.data() + (win - stream.data()) + 1;
    const LossTerms t = model.loss_only(win, window, w);
    // Weighted by the predictions each window's loss counts (with chat data: its answers').
    ce += t.main_ce * double(t.counted);
    tokens += t.counted;
    correct += t.main_correct;
    mtp_ce += t.mtp_ce * double(t.mtp_tokens);
    mtp_correct += t.mtp_correct;
    mtp_tokens += t.mtp_tokens;
  }
  EvalRecord r;
  r.step = step;
  r.tokens = tokens;
  r.loss = tokens ? ce / double(tokens) : NAN;
  r.perplexity = std::exp(r.loss);
  if (cfg && tokens) r.accuracy = double(correct) / double(tokens);
  if (mtp_tokens) {
    r.mtp_loss = mtp_ce / double(mtp_tokens);
    r.mtp_accuracy = double(mtp_correct) / double(mtp_tokens);
  }
  return r;
}

}  // namespace

TrainResult run_training(const RunConfig& run, Trainable& model, const TokenData& data, const TrainerOptions& opts) {
  const fs::path out(run.out_dir);
  if (opts.resume.empty() && fs::exists(out / "state" / "state.json"))
    fail("'", run.out_dir, "' already holds a training state: continue it with --resume ", run.out_dir,
         ", or choose another out_dir (a fresh run would overwrite it)");
  // Only rank 0 writes (run.json, metrics, state, export, plot); the ranks hold the same weights.
  const bool root = DataParallel::is_root();
  if (root) {
    fs::create_directories(out);
    std::ofstream cfg(out / "run.json");
    cfg << run.to_json();
  }
  const int64_t window = run.seq_len + 1;
  for (const auto* stream : {&data.train, &data.eval, &data.replay, &data.replay_eval})
    for (int32_t id : *stream)
      if (id < 0 || id >= model.vocab_size())
        fail("token id ", id, " from the tokenizer is outside the model's vocabulary of ", model.vocab_size(),
             " (use a model config whose vocab_size covers the tokenizer)");

  const std::vector<ParamView> params = model.params();
  AdamW opt(run.optimizer, /*bf16_moments=*/run.precision != "fp32");
  opt.attach(params);
  WindowSampler sampler(data.train, window, run.seed, data.packed);
  std::optional<WindowSampler> replay;  // its own seed, so adding replay leaves weight init alone
  int32_t replay_bos = -1;
  std::vector<int32_t> replay_buf;
  if (run.data.replay_share > 0) {
    if (data.replay.empty()) fail("data.replay: the replay text was not loaded");
    replay.emplace(data.replay, window, run.seed ^ 0x7e91a7ull, false);
    if (run.data.replay_bos) {
      if (!opts.tokenizer || opts.tokenizer->bos_id() < 0)
        fail("data.replay.bos needs a tokenizer with a BOS token (or set data.replay.bos to false)");
      replay_bos = opts.tokenizer->bos_id();
    }
  }
  std::optional<PasskeyExamples> passkey;
  if (run.data.passkey_fraction > 0) {
    if (!opts.tokenizer) fail("data.passkey_fraction needs the run's tokenizer");
    passkey.emplace(*opts.tokenizer, run.data.passkey_fraction, window, run.seed);
  }
  const std::vector<const int32_t*> eval_set = eval_windows(data.eval, window, run.data.eval_sequences);
  const std::vector<const int32_t*> text_eval_set = eval_windows(data.replay_eval, window, run.data.eval_sequences);
  if (!run.data.replay_eval_files.empty() && run.data.eval_sequences > 0 && text_eval_set.empty())
    fail("the replay evaluation text has ", data.replay_eval.size(), " tokens, fewer than one window of seq_len+1 = ",
         window);
  if (run.data.eval_sequences > 0 && eval_set.empty())
    fail("the evaluation text has ", data.eval.size(), " tokens, fewer than one window of seq_len+1 = ", window,
         "; add evaluation text, raise data.eval_fraction or set data.eval_sequences to 0");

  TrainProgress pr;
  pr.train_tokens = int64_t(data.train.size());
  pr.replay_tokens = replay ? int64_t(data.replay.size()) : 0;
  if (!opts.resume.empty()) {
    pr = load_train_state(opts.resume, model, opt);
    if (pr.train_tokens != int64_t(data.train.size()))
      fail("the training data changed since the state in '", opts.resume, "' was saved (", pr.train_tokens,
           " tokens then, ", data.train.size(), " now): a resumed run must see the same data");
    if (pr.replay_tokens != (replay ? int64_t(data.replay.size()) : 0))
      fail("the replay text changed since the state in '", opts.resume, "' was saved (", pr.replay_tokens,
           " tokens then, ", replay ? data.replay.size() : 0, " now): a resumed run must see the same data");
    sampler.restore(pr.data);
    if (replay) replay->restore(pr.replay);
  }
  MetricsLog log(root ? (out / "metrics.jsonl").string() : "/dev/null", opts.resume.empty() || !root ? -1 : pr.step);

  TrainResult res;
  res.total_steps = run.total_steps();
  res.first_step = pr.step;
  res.state_dir = (out / "state").string();
  const int64_t end = opts.stop_after > 0 ? std::min(opts.stop_after, res.total_steps) : res.total_steps;
  const int64_t L = model.num_moe_layers();
  const double per_seq = 1.0 / double(run.batch_size * run.grad_accum);
  ProgressBar bar(opts.progress && root, res.total_steps);
  const model::ModelConfig* flops_cfg = model.hf_config();
  res.peak_gflops = flops_cfg ? opts.peak_gflops : 0;
  StepProfile profile;
  struct ActiveProfile {  // the profile is active for this call only, even when it throws
    explicit ActiveProfile(StepProfile* p) { StepProfile::set_active(p); }
    ~ActiveProfile() { StepProfile::set_active(nullptr); }
  } active_profile(opts.profile ? &profile : nullptr);

  auto save = [&](int64_t step) {
    pr.data = sampler.state();
    if (replay) pr.replay = replay->state();
    res.export_dir = run.export_dtype != "none" && model.hf_config() ? (out / "hf").string() : "";
    if (!root) return;
    save_train_state(res.state_dir, model, opt, pr, run);
    const model::ModelConfig* cfg = model.hf_config();
    if (cfg && run.export_dtype != "none") {
      res.export_dir = (out / "hf").string();
      export_hf_checkpoint(res.export_dir, *cfg, named_tensors(model),
                           ExportOptions{run.export_dtype, int(run.export_shards), run.data.tokenizer});
    }
    bar.note("step " + std::to_string(step) + ": saved " + res.state_dir + (res.export_dir.empty() ? "" : " and " + res.export_dir));
  };

  const auto t_start = Clock::now();
  while (pr.step < end) {
    const auto t0 = Clock::now();
    const int64_t s = pr.step;  // 0-based index of this step
    const double lr = learning_rate(run.schedule, run.optimizer.lr, s, res.total_steps);
    const double gamma = bias_update_speed(run.balance, s, res.total_steps);
    const LossWeights lw{mtp_weight(run.mtp, s, res.total_steps), balance_weight(run.balance)};

    model.zero_grad();
    LossTerms sum;
    std::vector<std::vector<int64_t>> load(static_cast<size_t>(L));
    for (int64_t i = 0; i < L; ++i) load[size_t(i)].assign(model.gate_bias(i).size(), 0);
    // Every rank draws the whole global batch (so samplers stay in step) and computes the
    // sequences k with k % size == rank; the sums over ranks below make up the rest.
    const int ranks = DataParallel::size(), me = DataParallel::rank();
    for (int64_t k = 0; k < run.batch_size * run.grad_accum; ++k) {
      const int32_t* seq;
      LossWeights sw = lw;
      {
        const StepScope data_scope(StepPhase::Data);
        const int64_t g = s * run.batch_size * run.grad_accum + k;  // this window's index in the run
        if (replay && replay_window(g, run.data.replay_share)) {
          seq = replay_tokens(replay->next(), window, replay_bos, replay_buf);  // text: every token counts
        } else {
          seq = sampler.next();
          if (!data.train_answer.empty()) sw.target_mask = data.train_answer.data() + (seq - data.train.data()) + 1;
        }
        if (passkey && k % ranks == me && passkey->picks(s, k)) {
          seq = passkey->make(seq, s, k);
          sw.target_mask = run.data.passkey_loss == "answer" ? passkey->mask() : nullptr;
        }
      }
      if (k % ranks != me) continue;
      if (opts.teacher) {
        const StepScope teacher_scope(StepPhase::Teacher);
        sw.teacher_logits = opts.teacher->logits(seq, window);
        sw.kd_weight = run.distill.weight;
        sw.kd_temperature = run.distill.temperature;
      }
      const StepScope model_scope(StepPhase::Model);
      const LossTerms t = model.loss_and_grad(seq, window, sw, float(per_seq));
      sum.loss += t.loss * per_seq;
      sum.main_ce += t.main_ce * per_seq;
      sum.mtp_ce += t.mtp_ce * per_seq;
      sum.balance += t.balance * per_seq;
      sum.kd += t.kd * per_seq;
      sum.tokens += t.tokens;
      res.kept_bytes = std::max(res.kept_bytes, t.kept_bytes);
      res.kept_block_bytes = std::max(res.kept_block_bytes, t.kept_block_bytes);
      if (int64_t(t.expert_load.size()) != L) fail("the model reported expert load for ", t.expert_load.size(), " MoE layers, it has ", L);
      for (int64_t i = 0; i < L; ++i) {
        if (t.expert_load[size_t(i)].size() != load[size_t(i)].size())
          fail("MoE layer ", i, ": expert load has ", t.expert_load[size_t(i)].size(), " experts, the gate bias ", load[size_t(i)].size());
        for (size_t e = 0; e < load[size_t(i)].size(); ++e) load[size_t(i)][e] += t.expert_load[size_t(i)][e];
      }
    }
    if (ranks > 1) {
      for (const ParamView& p : params) DataParallel::sum(p.grad, int64_t(p.numel()));
      double terms[5] = {sum.loss, sum.main_ce, sum.mtp_ce, sum.balance, sum.kd};
      DataParallel::sum(terms, 5);
      sum.loss = terms[0], sum.main_ce = terms[1], sum.mtp_ce = terms[2], sum.balance = terms[3], sum.kd = terms[4];
      DataParallel::sum(&sum.tokens, 1);
      for (auto& l : load) DataParallel::sum(l.data(), int64_t(l.size()));
    }
    std::optional<StepScope> optimizer_scope(std::in_place, StepPhase::Optimizer);
    const double gnorm = clip_grad_norm(params, run.optimizer.grad_clip);
    if (!std::isfinite(sum.loss) || !std::isfinite(gnorm))
      fail("training diverged at step ", s + 1, ": loss ", sum.loss, ", gradient norm ", gnorm,
           " (lower optimizer.lr, raise schedule.warmup_steps or check the data)");
    opt.step(params, lr, opts.pool);
    model.weights_changed();
    StepRecord rec;
    for (int64_t i = 0; i < L; ++i) {
      update_gate_bias(model.gate_bias(i), load[size_t(i)], gamma);
      rec.maxvio.push_back(max_violation(load[size_t(i)]));
    }
    optimizer_scope.reset();
    ++pr.step;
    pr.tokens_seen += sum.tokens;
    res.run_tokens += sum.tokens;
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    pr.elapsed_s += dt;

    const bool last = pr.step == res.total_steps;
    const bool eval_now = !eval_set.empty() && ((run.eval_interval > 0 && pr.step % run.eval_interval == 0) || last);
    rec.step = pr.step;
    rec.lr = lr;
    rec.loss = sum.loss;
    rec.main_ce = sum.main_ce;
    rec.mtp_ce = sum.mtp_ce;
    rec.balance = sum.balance;
    rec.kd = opts.teacher ? sum.kd : NAN;
    rec.grad_norm = gnorm;
    rec.mtp_weight = lw.mtp_weight;
    rec.gamma = gamma;
    rec.tokens = pr.tokens_seen;
    rec.tokens_per_s = dt > 0 ? double(sum.tokens) / dt : 0;
    if (flops_cfg) {
      // This rank's sequences; with several ranks each one reports its own share's MFU.
      const int64_t seqs = (run.batch_size * run.grad_accum - me + ranks - 1) / ranks;
      const double step_flops = double(seqs) * train_flops_per_window(*flops_cfg, window, lw.mtp_weight > 0);
      res.flops += step_flops;
      if (res.peak_gflops > 0 && dt > 0) rec.mfu = step_flops / dt / (res.peak_gflops * 1e9);
    }
    if (eval_now || last) rec.expert_load = load;
    if (pr.step % run.log_interval == 0 || last || eval_now) log.write(rec);
    res.losses.push_back(sum.loss);
    res.maxvio = rec.maxvio;

    const double so_far = std::chrono::duration<double>(Clock::now() - t_start).count();
    const double eta = so_far / double(pr.step - res.first_step) * double(res.total_steps - pr.step);
    char figures[96];
    std::snprintf(figures, sizeof figures, "loss %.4f | %.0f tok/s | ETA %s", sum.loss, rec.tokens_per_s,
                  duration(eta).c_str());
    bar.update(pr.step, figures);
    if (eval_now) {
      const StepScope eval_scope(StepPhase::Eval);
      EvalRecord e = evaluate(model, eval_set, window, pr.step, data.eval, data.eval_answer);
      if (!text_eval_set.empty()) {
        const EvalRecord t = evaluate(model, text_eval_set, window, pr.step, data.replay_eval, {});
        e.text_loss = t.loss;
        e.text_perplexity = t.perplexity;
      }
      log.write(e);
      res.eval_loss = e.loss;
      res.eval_perplexity = e.perplexity;
      res.text_perplexity = e.text_perplexity;
      char buf[160];
      int n = std::snprintf(buf, sizeof buf, "step %lld: eval loss %.4f, perplexity %.2f", (long long)pr.step, e.loss,
                            e.perplexity);
      if (std::isfinite(e.text_loss))
        std::snprintf(buf + n, sizeof buf - size_t(n), "; replay text loss %.4f, perplexity %.2f", e.text_loss,
                      e.text_perplexity);
      bar.note(buf);
    }
    if (run.checkpoint_interval > 0 && pr.step % run.checkpoint_interval == 0 && pr.step != end) save(pr.step);
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  if (opts.profile) {
    profile.enter(StepPhase::Other);
    res.profile = profile.table();
  }
  if (pr.step > res.first_step || opts.resume.empty()) save(pr.step);
  bar.finish();
  res.steps = pr.step;
  res.tokens = pr.tokens_seen;
  if (root)
    write_loss_plot((out / "loss.svg").string(), read_loss_curves((out / "metrics.jsonl").string()),
                    "dsv3 train: " + model.kind() + ", " + std::to_string(pr.step) + " steps" +
                        (DataParallel::size() > 1 ? ", " + std::to_string(DataParallel::size()) + " ranks" : ""));
  return res;
}

TrainResult train(const RunConfig& run, const TrainerOptions& opts, ThreadPool& pool) {
  // Rank 0 tokenizes and fills the cache first; the others then read it.
  const std::string cache = (fs::path(run.out_dir) / "cache").string();
  auto load_text = [&](const DataChoice& d) {
    TokenData t;
    if (DataParallel::is_root()) t = load_token_data(d, cache);
    DataParallel::barrier();
    if (!DataParallel::is_root()) t = load_token_data(d, cache);
    return t;
  };
  TokenData data;
  if (run.data.format == "chat") {
    // Rendered and packed by every rank (no cache): a few seconds even for large sets.
    std::string summary;
    data = load_chat_data(run.data, run.seq_len + 1, &summary);
    if (DataParallel::is_root() && opts.progress) std::fprintf(stderr, "%s\n", summary.c_str());
    if (run.data.replay_share > 0) {
      // The replay text as text data (cached like it), nothing held out of it.
      DataChoice text = run.data;
      text.format = "text";
      text.train_files = run.data.replay_files;
      text.eval_files = run.data.replay_eval_files;
      text.eval_fraction = 0;
      TokenData t = load_text(text);
      data.replay = std::move(t.train);
      data.replay_eval = std::move(t.eval);
      if (DataParallel::is_root() && opts.progress)
        std::fprintf(stderr, "replay text: %zu training tokens, %zu held out; %.0f%% of the windows\n",
                     data.replay.size(), data.replay_eval.size(), 100 * run.data.replay_share);
    }
  } else {
    data = load_text(run.data);
  }
  const Tokenizer tok = Tokenizer::load(run.data.tokenizer);
  std::unique_ptr<Trainable> model = make_trainable(run, tok.vocab_size(), pool);
  TrainerOptions o = opts;
  o.tokenizer = &tok;
  o.pool = &pool;
  std::optional<Teacher> teacher;
  if (!run.distill.teacher.empty() && !o.teacher) {
    teacher.emplace(run.distill.teacher, &tok, model->vocab_size(), pool);
    o.teacher = &*teacher;
  }
  std::string kind;
  if (o.peak_gflops <= 0 && model->hf_config()) o.peak_gflops = probe_training_peak(pool, run.precision, kind);
  TrainResult r = run_training(run, *model, data, o);
  r.peak_kind = kind;
  return r;
}

double probe_training_peak(ThreadPool& pool, const std::string& precision, std::string& kind) {
  // The best of three short probes: one can land while a core is busy elsewhere (a 0.1 s
  // probe once read half the peak).
  double fma = 0, bf16 = 0;
  for (int i = 0; i < 3; ++i) fma = std::max(fma, kernels::probe_fma_gflops_all(pool, 0.1));
  kind = "fp32 FMA";
  if (precision == "fp32") return fma;
  for (int i = 0; i < 3; ++i) bf16 = std::max(bf16, kernels::probe_bf16_gflops_all(pool, 0.1));
  if (bf16 <= fma) return fma;
  kind = "BF16 dot product";
  return bf16;
}

std::string summary_line(const TrainResult& r) {
  char buf[512];
  const int64_t done = r.steps - r.first_step;
  std::snprintf(buf, sizeof buf, "trained steps %lld-%lld of %lld in %s (%.0f tokens/s); last loss %.4f",
                (long long)(r.first_step + (done > 0 ? 1 : 0)), (long long)r.steps, (long long)r.total_steps,
                duration(r.seconds).c_str(), r.seconds > 0 ? double(r.run_tokens) / r.seconds : 0.0,
                r.losses.empty() ? NAN : r.losses.back());
  std::string s = buf;
  if (std::isfinite(r.mfu())) {
    std::snprintf(buf, sizeof buf, "; MFU %.3f of the %.0f GFLOP/s %s peak", r.mfu(), r.peak_gflops,
                  r.peak_kind.empty() ? "given" : r.peak_kind.c_str());
    s += buf;
  }
  if (r.kept_bytes > 0) {
    std::snprintf(buf, sizeof buf, "; activations kept for backward %.2f MB per sequence (decoder blocks %.2f MB)",
                  double(r.kept_bytes) / 1e6, double(r.kept_block_bytes) / 1e6);
    s += buf;
  }
  if (std::isfinite(r.eval_loss)) {
    std::snprintf(buf, sizeof buf, "; eval loss %.4f, perplexity %.2f", r.eval_loss, r.eval_perplexity);
    s += buf;
    if (std::isfinite(r.text_perplexity)) {
      std::snprintf(buf, sizeof buf, " (replay text perplexity %.2f)", r.text_perplexity);
      s += buf;
    }
  }
  s += "; state " + r.state_dir;
  if (!r.export_dir.empty()) s += "; checkpoint " + r.export_dir;
  return s;
}

}  // namespace dsv3::train
