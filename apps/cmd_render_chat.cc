// `dsv3 render-chat`: renders a model's chat template for one request read from stdin, the
// scriptable form tests and tools use to compare prompts with Hugging Face's.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "base/error.h"
#include "chat/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::app {
namespace {

struct RenderChatOptions {
  std::string tokenizer, template_file;
};

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

//! The answer for one request {"messages": [...], "tools": [...], "add_generation_prompt":
//! bool, ...}: every key of the request becomes a template variable (an absent key stays
//! undefined), after bos_token / eos_token from tokenizer_config.json, which the request may
//! override. Returns {"text": the rendered prompt, "ids": its token ids}.
nlohmann::ordered_json render_chat(const RenderChatOptions& o, const nlohmann::ordered_json& request) {
  const ChatConfig config = load_chat_config(o.tokenizer);
  std::string source = config.chat_template, name = "chat_template";
  if (!o.template_file.empty()) {
    std::ifstream in(o.template_file, std::ios::binary);
    if (!in) fail(o.template_file, ": cannot open the template file");
    source = read_all(in);
    name = o.template_file;
  } else if (source.empty()) {
    fail(config.path, ": has no chat_template (pass --template FILE)");
  }
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  if (config.has_bos) context["bos_token"] = config.bos_token;
  if (config.has_eos) context["eos_token"] = config.eos_token;
  for (auto it = request.begin(); it != request.end(); ++it) context[it.key()] = it.value();
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  const std::string text = ChatTemplate::parse(source, name).render(context);
  out["text"] = text;
  // As apply_chat_template(tokenize=True): the template writes BOS itself, so none is added.
  const std::filesystem::path p(o.tokenizer);
  const bool tokenizer_path = std::filesystem::is_directory(p) || p.filename() == "tokenizer.json";
  out["ids"] = Tokenizer::load(tokenizer_path ? o.tokenizer : p.parent_path().string()).encode(text, false);
  return out;
}

void run(const RenderChatOptions& o) {
  nlohmann::ordered_json request;
  try {
    request = nlohmann::ordered_json::parse(read_all(std::cin));
  } catch (const nlohmann::json::exception& e) {
    fail("stdin: invalid JSON: ", e.what());
  }
  if (!request.is_object()) fail("stdin: expected a JSON object like {\"messages\": [...]}, got ", request.type_name());
  const nlohmann::ordered_json out = render_chat(o, request);
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

void add_render_chat(CLI::App& app) {
  auto o = std::make_shared<RenderChatOptions>();
  CLI::App* cmd = app.add_subcommand(
      "render-chat", "render the chat template for {\"messages\": [...], \"tools\": [...], ...} on stdin as {\"text\": ...}");
  cmd->add_option("--tokenizer", o->tokenizer, "model folder, tokenizer.json or tokenizer_config.json")->required();
  cmd->add_option("--template", o->template_file, "a Jinja file to use instead of the config's chat_template");
  cmd->callback([o] { run(*o); });
}

}  // namespace dsv3::app
