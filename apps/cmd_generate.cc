#include <cstdio>
#include <string>

#include "apps/batch_generate.h"
#include "apps/commands.h"
#include "apps/default_model.h"
#include "apps/draft_flag.h"
#include "apps/numerics_flag.h"
#include "apps/textgen.h"
#include "base/error.h"

namespace dsv3::app {
namespace {

struct GenerateFlags {
  std::string model, prompt, system;
  bool chat = false;
  BatchOptions batch;
  WeightFlags weights;
  int64_t ctx_size = 4096;
  runtime::GenerateOptions gen;
  NumericsFlag numerics;
  DraftFlag draft;
};

void run(const GenerateFlags& f, ThreadPool& pool, const dist::EpOptions& ep) {
  if (f.prompt.empty() == f.batch.in.empty()) fail("give --prompt TEXT, or --batch FILE --out FILE");
  if (!f.batch.in.empty()) {
    if (f.batch.out.empty()) fail("--batch needs --out FILE (the accepted answers as chat JSONL)");
    if (!f.system.empty()) fail("--system applies to --prompt; put a system message in the batch file's messages");
    TextModel tm = load_text_model(resolve_model_dir(f.model), true, ep, f.weights, f.draft.wants_mtp());
    BatchOptions b = f.batch;
    b.engine.ctx_size = f.ctx_size;
    b.engine.numerics = f.numerics.value();
    f.draft.apply(*tm.model, b.engine);
    b.gen = f.gen;
    run_batch(tm, b, pool);
    return;
  }
  TextModel tm = load_text_model(resolve_model_dir(f.model), f.chat, ep, f.weights, f.draft.wants_mtp());
  std::vector<int32_t> prompt;
  if (f.chat) {
    nlohmann::json messages = nlohmann::json::array();
    if (!f.system.empty()) messages.push_back({{"role", "system"}, {"content", f.system}});
    messages.push_back({{"role", "user"}, {"content", f.prompt}});
    prompt = chat_prompt(tm, messages);
  } else {
    if (!f.system.empty()) fail("--system needs --chat (a system prompt belongs to a conversation)");
    prompt = tm.tokenizer->encode(f.prompt, tm.tokenizer->add_bos_by_default());
  }
  runtime::EngineOptions eo = runtime::single_sequence_options(std::max<int64_t>(f.ctx_size, int64_t(prompt.size()) + 1));
  eo.numerics = f.numerics.value();
  f.draft.apply(*tm.model, eo);
  runtime::Engine engine(*tm.model, *tm.tokenizer, pool, eo);
  const runtime::GenerateResult r = runtime::generate(engine, prompt, f.gen, [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr, "[%s]\n", stats_line(r).c_str());
}

}  // namespace

void add_generate(CLI::App& app, AppContext& ctx) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate",
                                     "generate text from a prompt, streaming it as it is produced; or answer a JSONL "
                                     "of prompts in a batch and keep the answers a check accepts (--batch)");
  add_model_option(cmd, "--model", f->model, "model folder (weights, config.json, tokenizer.json)");
  cmd->add_option("--prompt,-p", f->prompt, "the prompt text");
  cmd->add_option("--batch", f->batch.in,
                  "answer every prompt of a JSONL file ({\"messages\": [...]} or {\"prompt\": text}, with \"targets\" "
                  "or \"regex\" for --check) through the chat template, --samples times each, and write the "
                  "accepted answers to --out as chat JSONL (SFT data)");
  cmd->add_option("--out", f->batch.out, "with --batch: the output JSONL");
  cmd->add_option("--samples", f->batch.samples, "with --batch: answers per prompt (default 1)");
  cmd->add_option("--check", f->batch.check,
                  "with --batch: keep answers that are none (all), exact (equal a target, whitespace trimmed), regex "
                  "(match the line's regex) or script (--check-script accepts)")
      ->check(CLI::IsMember({"none", "exact", "regex", "script"}));
  cmd->add_option("--check-script", f->batch.check_script,
                  "with --check script: a shell command given {messages, answer, targets} as JSON on stdin; exit 0 "
                  "accepts");
  cmd->add_option("--max-seqs", f->batch.engine.max_seqs, "with --batch: sequences decoded together (default 8)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--chat", f->chat, "wrap the prompt as a user turn with the model's chat template");
  cmd->add_option("--system", f->system, "system prompt (with --chat)");
  cmd->add_option("--ctx-size", f->ctx_size, "context size in tokens")->capture_default_str();
  add_weight_flags(cmd, f->weights);
  add_numerics_flags(cmd, f->numerics, "bf16");
  add_generation_flags(cmd, f->gen);
  add_draft_flag(cmd, f->draft);
  cmd->callback([f, &ctx] { run(*f, ctx.pool(), ctx.ep_options()); });
}

}  // namespace dsv3::app
