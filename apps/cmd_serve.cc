// `dsv3 serve`: the OpenAI-compatible HTTP server.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "apps/draft_flag.h"
#include "apps/numerics_flag.h"
#include "apps/default_model.h"
#include "apps/textgen.h"
#include "base/error.h"
#include "runtime/engine.h"
#include "server/http_server.h"

namespace dsv3::app {
namespace {

server::HttpServer* g_server = nullptr;
extern "C" void on_signal(int) {
  if (g_server) g_server->stop();
}

uint64_t parse_bytes(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    fail("--cache-mem ", s, ": expected a size such as 2G, 512M or 1000000");
  }
  std::string unit = s.substr(pos);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit == "" || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mult = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mult = 1024.0 * 1024 * 1024;
  else fail("--cache-mem ", s, ": unknown unit '", unit, "' (use K, M or G)");
  if (v <= 0) fail("--cache-mem must be positive");
  return uint64_t(v * mult);
}

}  // namespace

void add_serve(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("serve",
                                 "HTTP server with continuous batching: OpenAI chat/text completions and Responses, "
                                 "Anthropic Messages, a chat page at /");
  struct Opts {
    std::string model, host = "127.0.0.1", api_key, name, cache_mem;
    int port = 8080;
    int64_t max_seqs = 8, ctx_size = 4096, step_tokens = 256, page_tokens = 16;
    std::string attention = "absorbed";
    bool no_webui = false;
    WeightFlags weights;
    NumericsFlag numerics;
    DraftFlag draft;
  };
  auto o = std::make_shared<Opts>();
  add_model_option(cmd, "--model,-m", o->model, "model folder (config.json, *.safetensors, tokenizer.json)");
  cmd->add_option("--host", o->host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", o->port, "TCP port (default 8080; 0 picks a free one and prints it)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o->api_key,
                  "require 'Authorization: Bearer KEY' or 'x-api-key: KEY' on the API routes (the chat page at / "
                  "loads without it and asks for the key)");
  cmd->add_flag("--no-webui", o->no_webui, "do not serve the chat page at /");
  cmd->add_option("--max-seqs", o->max_seqs, "sequences decoded together; more wait in a queue (default 8)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--ctx-size", o->ctx_size, "tokens per sequence, prompt + answer (default 4096)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  cmd->add_option("--cache-mem", o->cache_mem,
                  "latent cache budget, e.g. 2G (default: room for --max-seqs full contexts)");
  cmd->add_option("--served-model-name", o->name, "model id clients use (default: the folder name)");
  cmd->add_option("--step-tokens", o->step_tokens, "prompt tokens per engine step (default 256)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--page-tokens", o->page_tokens, "tokens per cache page (default 16)")->check(CLI::PositiveNumber);
  cmd->add_option("--attention", o->attention,
                  "absorbed (default: results independent of batching) or auto (naive for long prompts; a "
                  "prompt's results then depend on how it is chunked, slightly in fp32, more in bf16 numerics, "
                  "where the two forms round different intermediates)")
      ->check(CLI::IsMember({"absorbed", "auto"}));
  add_weight_flags(cmd, o->weights);
  add_numerics_flags(cmd, o->numerics, "bf16");
  add_draft_flag(cmd, o->draft);
  cmd->callback([o, &ctx] {
    o->model = resolve_model_dir(o->model);
    TextModel lt = load_text_model(o->model, false, ctx.ep_options(), o->weights, o->draft.wants_mtp());
    if (lt.tokenizer->chat_template().empty())
      std::fprintf(stderr, "dsv3 serve: note: no chat template; only /v1/completions will work\n");
    runtime::EngineOptions eo;
    eo.max_seqs = o->max_seqs;
    eo.ctx_size = o->ctx_size;
    eo.step_tokens = o->step_tokens;
    eo.page_tokens = o->page_tokens;
    eo.numerics = o->numerics.value();
    eo.attention = o->attention == "auto" ? model::AttentionForm::Auto : model::AttentionForm::Absorbed;
    o->draft.apply(*lt.model, eo);
    if (!o->cache_mem.empty()) eo.cache_bytes = parse_bytes(o->cache_mem);
    runtime::Engine engine(*lt.model, *lt.tokenizer, ctx.pool(), eo);
    server::ServerOptions so;
    so.host = o->host;
    so.port = o->port;
    so.api_key = o->api_key;
    so.webui = !o->no_webui;
    so.model_name = o->name.empty() ? std::filesystem::path(o->model).lexically_normal().filename().string() : o->name;
    if (so.model_name.empty()) so.model_name = std::filesystem::absolute(o->model).parent_path().filename().string();
    server::HttpServer http(*lt.model, *lt.tokenizer, engine, so);
    http.bind();
    const runtime::EngineStats st = engine.stats();
    std::fprintf(stderr, "dsv3 serve: '%s' on http://%s:%d  (max %lld sequences x %lld tokens, cache %.1f MB = %lld pages)\n",
                 so.model_name.c_str(), so.host.c_str(), http.port(), (long long)eo.max_seqs, (long long)eo.ctx_size,
                 double(st.cache_bytes) / 1e6, (long long)st.pages_total);
    if (so.webui) std::fprintf(stderr, "dsv3 serve: chat page at http://%s:%d/\n", so.host.c_str(), http.port());
    std::fflush(stderr);
    g_server = &http;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    http.serve();
    g_server = nullptr;
    std::fprintf(stderr, "dsv3 serve: stopped\n");
  });
}

}  // namespace dsv3::app
