#include <cstdio>
#include <string>

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
  WeightFlags weights;
  int64_t ctx_size = 4096;
  runtime::GenerateOptions gen;
  NumericsFlag numerics;
  DraftFlag draft;
};

void run(const GenerateFlags& f, ThreadPool& pool, const dist::EpOptions& ep) {
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
  CLI::App* cmd = app.add_subcommand("generate", "generate text from a prompt, streaming it as it is produced");
  add_model_option(cmd, "--model", f->model, "model folder (weights, config.json, tokenizer.json)");
  cmd->add_option("--prompt,-p", f->prompt, "the prompt text")->required();
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
