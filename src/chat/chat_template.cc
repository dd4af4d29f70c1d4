#include "chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_eval.h"

namespace dsv3 {

ChatTemplate ChatTemplate::parse(const std::string& source, const std::string& name) {
  ChatTemplate t;
  t.program_ = jinja::parse_template(source, name);
  return t;
}

const std::string& ChatTemplate::name() const { return program_->name; }

namespace {

template <typename J>
std::string render_with(const jinja::Program& program, const J& context) {
  if (!context.is_object() && !context.is_null())
    fail(program.name, ": the template context must be a JSON object, got ", context.type_name());
  jinja::Scope globals;
  jinja::install_globals(globals);
  if (context.is_object())
    for (auto it = context.begin(); it != context.end(); ++it) globals.set(it.key(), jinja::from_json(it.value()));
  jinja::Interpreter interpreter(program);
  return interpreter.render(globals);
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const { return render_with(*program_, context); }
std::string ChatTemplate::render(const nlohmann::json& context) const { return render_with(*program_, context); }

namespace {

namespace fs = std::filesystem;

// A special token in tokenizer_config.json: a string, an AddedToken {"content": ...} or null.
bool token_text(const nlohmann::json& config, const char* key, std::string& out) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return false;
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out = (*it)["content"].get<std::string>();
    return true;
  }
  return false;
}

}  // namespace

ChatConfig load_chat_config(const std::string& path) {
  fs::path p(path);
  if (!fs::exists(p)) fail(path, ": no such file or folder (expected a model folder, tokenizer.json or tokenizer_config.json)");
  if (fs::is_directory(p)) {
    p /= "tokenizer_config.json";
  } else if (p.filename() != "tokenizer_config.json") {
    p = p.parent_path() / "tokenizer_config.json";  // next to tokenizer.json
  }
  std::ifstream in(p);
  if (!in) fail(p.string(), ": cannot open (expected the tokenizer_config.json of ", path, ")");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail(p.string(), ": invalid JSON: ", e.what());
  }
  if (!config.is_object()) fail(p.string(), ": expected a JSON object");
  ChatConfig out;
  out.path = p.string();
  const auto t = config.find("chat_template");
  if (t == config.end() || t->is_null()) {
    // no template: out.chat_template stays empty
  } else if (t->is_string()) {
    out.chat_template = t->get<std::string>();
  } else if (t->is_array() && !t->empty()) {
    // A list of {"name": ..., "template": ...}: the one named "default", else the first.
    const nlohmann::json* chosen = &(*t)[0];
    for (const auto& e : *t)
      if (e.is_object() && e.value("name", "") == "default") chosen = &e;
    if (!chosen->is_object() || !chosen->contains("template") || !(*chosen)["template"].is_string())
      fail(p.string(), ": chat_template list entries need a \"template\" string");
    out.chat_template = (*chosen)["template"].get<std::string>();
  } else {
    fail(p.string(), ": chat_template must be a string or a list of {name, template}");
  }
  out.has_bos = token_text(config, "bos_token", out.bos_token);
  out.has_eos = token_text(config, "eos_token", out.eos_token);
  return out;
}

}  // namespace dsv3
