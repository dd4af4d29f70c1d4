#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "apps/commands.h"
#include "apps/draft_flag.h"
#include "apps/numerics_flag.h"
#include "apps/default_model.h"
#include "apps/textgen.h"
#include "base/error.h"

namespace dsv3::app {
namespace {

std::atomic<bool> g_generating{false};
std::atomic<bool> g_cancel{false};

// Ctrl-C stops the answer being written; at the prompt it leaves the program.
void on_sigint(int) {
  if (g_generating.load()) {
    g_cancel.store(true);
  } else {
    static const char bye[] = "\n";
    [[maybe_unused]] ssize_t n = write(STDOUT_FILENO, bye, 1);
    _exit(130);
  }
}

struct ChatFlags {
  std::string model, system;
  int64_t ctx_size = 4096;
  WeightFlags weights;
  runtime::GenerateOptions gen;
  NumericsFlag numerics;
  DraftFlag draft;
};

const char* kHelp =
    "commands:\n"
    "  /reset              forget the conversation (keeps the system prompt)\n"
    "  /system TEXT        set the system prompt and reset\n"
    "  /set NAME VALUE     temperature, top_p, top_k, min_p, max_tokens, seed,\n"
    "                      repetition_penalty, presence_penalty, frequency_penalty\n"
    "  /show               print the current settings\n"
    "  /help               this text\n"
    "  /quit               leave (also Ctrl-D, or Ctrl-C at the prompt)\n"
    "Ctrl-C while an answer is being written stops that answer.\n";

void set_option(runtime::GenerateOptions& g, const std::string& name, const std::string& value) {
  runtime::GenerateOptions next = g;
  SamplingParams& s = next.sampling;
  try {
    if (name == "temperature") s.temperature = std::stof(value);
    else if (name == "top_p") s.top_p = std::stof(value);
    else if (name == "top_k") s.top_k = std::stoi(value);
    else if (name == "min_p") s.min_p = std::stof(value);
    else if (name == "max_tokens") next.max_tokens = std::stoll(value);
    else if (name == "seed") s.seed = std::stoull(value);
    else if (name == "repetition_penalty") s.repetition_penalty = std::stof(value);
    else if (name == "presence_penalty") s.presence_penalty = std::stof(value);
    else if (name == "frequency_penalty") s.frequency_penalty = std::stof(value);
    else fail("unknown setting '", name, "' (see /help)");
  } catch (const std::logic_error&) {
    fail("'", value, "' is not a valid value for ", name);
  }
  s.validate(1 << 30);
  if (next.max_tokens < 1) fail("max_tokens must be at least 1");
  g = next;
}

void show(const ChatFlags& f) {
  const SamplingParams& s = f.gen.sampling;
  std::printf("temperature %g, top_p %g, top_k %d, min_p %g, max_tokens %lld, repetition_penalty %g, "
              "presence_penalty %g, frequency_penalty %g, seed %s\nsystem: %s\n",
              s.temperature, s.top_p, s.top_k, s.min_p, (long long)f.gen.max_tokens, s.repetition_penalty,
              s.presence_penalty, s.frequency_penalty, s.seed ? std::to_string(*s.seed).c_str() : "clock",
              f.system.empty() ? "(none)" : f.system.c_str());
}

void run(ChatFlags f, ThreadPool& pool, const dist::EpOptions& ep) {
  const std::string dir = resolve_model_dir(f.model);
  TextModel tm = load_text_model(dir, /*need_template=*/true, ep, f.weights, f.draft.wants_mtp());
  // One engine for the whole conversation: each turn's prompt (the history through the chat
  // template) finds the earlier turns' latents in its cache and computes only what is new.
  runtime::EngineOptions eo = runtime::single_sequence_options(f.ctx_size);
  eo.numerics = f.numerics.value();
  f.draft.apply(*tm.model, eo);
  runtime::Engine engine(*tm.model, *tm.tokenizer, pool, eo);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);

  nlohmann::json history = nlohmann::json::array();
  const bool tty = isatty(STDIN_FILENO);
  std::printf("dsv3 chat: %s (type /help for commands)\n", dir.c_str());
  std::string line;
  for (;;) {
    if (tty) std::printf("> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line[0] == '/') {
      std::istringstream in(line);
      std::string cmd, name, value;
      in >> cmd;
      try {
        if (cmd == "/quit" || cmd == "/exit") break;
        if (cmd == "/help") std::printf("%s", kHelp);
        else if (cmd == "/reset") history = nlohmann::json::array(), std::printf("(conversation reset)\n");
        else if (cmd == "/show") show(f);
        else if (cmd == "/system") {
          std::getline(in >> std::ws, f.system);
          history = nlohmann::json::array();
          std::printf("(system prompt set; conversation reset)\n");
        } else if (cmd == "/set") {
          in >> name >> value;
          set_option(f.gen, name, value);
          std::printf("(%s = %s)\n", name.c_str(), value.c_str());
        } else {
          std::printf("unknown command %s (see /help)\n", cmd.c_str());
        }
      } catch (const Error& e) {
        std::printf("error: %s\n", e.what());
      }
      continue;
    }
    nlohmann::json messages = nlohmann::json::array();
    if (!f.system.empty()) messages.push_back({{"role", "system"}, {"content", f.system}});
    for (const auto& m : history) messages.push_back(m);
    messages.push_back({{"role", "user"}, {"content", line}});
    try {
      const std::vector<int32_t> prompt = chat_prompt(tm, messages);
      g_cancel.store(false);
      g_generating.store(true);
      const runtime::GenerateResult r = runtime::generate(engine, prompt, f.gen, [](const std::string& s) {
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
      }, &g_cancel);
      g_generating.store(false);
      std::printf("\n");
      std::fflush(stdout);
      std::fprintf(stderr, "[%s]\n", stats_line(r).c_str());
      history.push_back({{"role", "user"}, {"content", line}});
      history.push_back({{"role", "assistant"}, {"content", r.text}});
    } catch (const Error& e) {
      g_generating.store(false);
      std::printf("error: %s\n", e.what());
    }
  }
}

}  // namespace

void add_chat(CLI::App& app, AppContext& ctx) {
  auto f = std::make_shared<ChatFlags>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive chat with history, a system prompt and live settings");
  add_model_option(cmd, "--model", f->model, "model folder (weights, config.json, tokenizer files)");
  cmd->add_option("--system", f->system, "system prompt");
  cmd->add_option("--ctx-size", f->ctx_size, "context size in tokens")->capture_default_str();
  add_weight_flags(cmd, f->weights);
  add_numerics_flags(cmd, f->numerics, "bf16");
  add_generation_flags(cmd, f->gen);
  add_draft_flag(cmd, f->draft);
  f->gen.max_tokens = 512;
  cmd->callback([f, &ctx] { run(*f, ctx.pool(), ctx.ep_options()); });
}

}  // namespace dsv3::app
