// Chat templates: the Jinja subset Hugging Face chat templates use, rendered exactly as
// @huggingface/jinja 0.5.11 renders them (tests/data/chat_goldens.json holds its output for
// the DeepSeek templates), with Hugging Face's trim_blocks and lstrip_blocks settings.
//
//   const ChatConfig config = load_chat_config(model_dir);
//   const ChatTemplate t = ChatTemplate::parse(config.chat_template);
//   nlohmann::ordered_json context = {{"messages", messages}, {"add_generation_prompt", true},
//                                     {"bos_token", config.bos_token}};
//   std::string prompt = t.render(context);
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace dsv3 {

namespace jinja {
struct Program;
}

class ChatTemplate {
 public:
  //! Parses a template; a syntax error throws dsv3::Error "name:LINE:COL: message" (an
  //! unclosed block is reported where it opens). Unknown filters and tests are runtime errors,
  //! as in the reference: a branch that never runs may use them.
  static ChatTemplate parse(const std::string& source, const std::string& name = "chat_template");

  //! Renders with the members of `context` (a JSON object) as global variables: messages,
  //! tools, add_generation_prompt, bos_token, eos_token, ... A variable that is absent is
  //! undefined: it prints as "" and is false, and `is defined` tells it apart. Runtime errors
  //! (raise_exception, calling an undefined method, type errors) throw dsv3::Error
  //! "name:LINE:COL: message" with raise_exception's message as is.
  //! Key order: tojson prints dict keys in the order the context holds them; nlohmann::json
  //! sorts keys, so pass nlohmann::ordered_json to keep a client's order (what Hugging Face
  //! does with a parsed request).
  //! Thread safety: a parsed template is immutable; render may run concurrently.
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::json& context) const;

  const std::string& name() const;

 private:
  std::shared_ptr<const jinja::Program> program_;
};

//! What a model folder's tokenizer_config.json says about chat formatting.
struct ChatConfig {
  std::string path;           //!< the tokenizer_config.json read
  std::string chat_template;  //!< source of the "default" template (or the first of a list);
                              //!< empty when the config has none
  bool has_bos = false, has_eos = false;
  std::string bos_token, eos_token;  //!< the token texts (AddedToken objects give "content")
};

//! Reads tokenizer_config.json from `path`: a model folder, a tokenizer.json (the config next
//! to it) or the tokenizer_config.json itself. A missing file, bad JSON or a malformed
//! chat_template throw dsv3::Error naming the file.
ChatConfig load_chat_config(const std::string& path);

}  // namespace dsv3
