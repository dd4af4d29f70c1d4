#include "train/chat_data.h"

#include <fstream>
#include <sstream>

#include "api/errors.h"
#include "api/requests.h"
#include "base/error.h"
#include "chat/chat_template.h"

namespace dsv3::train {

using ojson = nlohmann::ordered_json;

namespace {

// The request of the first n messages (the same tools).
api::ChatCompletionRequest prefix(const api::ChatCompletionRequest& r, size_t n) {
  api::ChatCompletionRequest p = r;
  p.messages.resize(n);
  return p;
}

void append(ChatExample& ex, const std::vector<int32_t>& ids, uint8_t answer) {
  ex.tokens.insert(ex.tokens.end(), ids.begin(), ids.end());
  ex.answer.insert(ex.answer.end(), ids.size(), answer);
}

}  // namespace

std::vector<ChatExample> chat_examples(const api::ChatPromptBuilder& chat, const Tokenizer& tok,
                                       const ojson& conversation, const std::string& where) {
  api::ChatCompletionRequest r;
  try {
    if (!conversation.is_object()) fail("expected a JSON object with \"messages\"");
    ojson body{{"messages", conversation.contains("messages") ? conversation["messages"] : ojson(nullptr)}};
    if (conversation.contains("tools")) body["tools"] = conversation["tools"];
    r = api::parse_chat_request_json(body);
  } catch (const api::ApiError& e) {
    fail(where, ": ", e.param.empty() ? "" : e.param + ": ", e.message);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  std::vector<size_t> turns;  // indices of assistant messages
  for (size_t i = 0; i < r.messages.size(); ++i)
    if (r.messages[i].role == "assistant") turns.push_back(i);
  if (turns.empty()) return {};

  auto render = [&](size_t n, bool gen) {
    try {
      return chat.build(prefix(r, n), gen).text;
    } catch (const api::ApiError& e) {
      fail(where, ": ", e.message);
    }
  };
  auto ids = [&](const std::string& text) { return tok.encode(text, false, false); };
  const int32_t eos = tok.eos_id();
  // An answer ends with end-of-sequence: the template writes it (V3's does); if not, it is
  // added where nothing of the conversation follows (an example's last answer), so later
  // prompts stay exactly what serving renders.
  auto answer_ids = [&](const std::string& text, bool last) {
    std::vector<int32_t> a = ids(text);
    if (last && eos >= 0 && (a.empty() || a.back() != eos)) a.push_back(eos);
    return a;
  };

  // One example when each turn's prompt continues the text before it.
  std::vector<std::string> prompts, wholes;
  bool continues = true;
  for (size_t k = 0; k < turns.size(); ++k) {
    prompts.push_back(render(turns[k], true));
    wholes.push_back(render(turns[k] + 1, false));
    if (!wholes[k].starts_with(prompts[k]))
      fail(where, ": the chat template does not render assistant message ", turns[k],
           " as a continuation of its prompt; it cannot be trained on");
    if (k > 0 && !prompts[k].starts_with(wholes[k - 1])) continues = false;
  }
  std::vector<ChatExample> out;
  if (continues) {
    ChatExample ex;
    size_t done = 0;  // characters of the rendered text already in the example
    for (size_t k = 0; k < turns.size(); ++k) {
      append(ex, ids(prompts[k].substr(done)), 0);
      append(ex, answer_ids(wholes[k].substr(prompts[k].size()), k + 1 == turns.size()), 1);
      done = wholes[k].size();
    }
    out.push_back(std::move(ex));
  } else {
    for (size_t k = 0; k < turns.size(); ++k) {
      ChatExample ex;
      append(ex, ids(prompts[k]), 0);
      append(ex, answer_ids(wholes[k].substr(prompts[k].size()), true), 1);
      out.push_back(std::move(ex));
    }
  }
  return out;
}

PackStats pack_examples(const std::vector<ChatExample>& examples, int64_t window, int32_t pad,
                        std::vector<int32_t>& tokens, std::vector<uint8_t>& answer) {
  PackStats st;
  int64_t used = 0;  // tokens in the open window
  auto close = [&] {
    if (used == 0) return;
    st.padding += window - used;
    tokens.insert(tokens.end(), size_t(window - used), pad);
    answer.insert(answer.end(), size_t(window - used), 0);
    ++st.windows;
    used = 0;
  };
  for (const ChatExample& ex : examples) {
    int64_t n = int64_t(ex.tokens.size());
    if (n > window) {
      n = window;
      ++st.cut;
    }
    int64_t counted = 0;  // answer tokens that are predicted (not the window's first token)
    for (int64_t t = 1; t < n; ++t) counted += ex.answer[size_t(t)];
    if (counted == 0) continue;  // nothing of its answer would be trained on
    if (used + n > window) close();
    tokens.insert(tokens.end(), ex.tokens.begin(), ex.tokens.begin() + n);
    answer.insert(answer.end(), ex.answer.begin(), ex.answer.begin() + n);
    // The window's first token is never predicted.
    if (used == 0) answer[answer.size() - size_t(n)] = 0;
    used += n;
    ++st.examples;
    st.answer_tokens += counted;
  }
  close();
  return st;
}

namespace {

std::vector<ChatExample> read_jsonl(const std::string& path, const api::ChatPromptBuilder& chat, const Tokenizer& tok) {
  std::ifstream in(path);
  if (!in) fail("cannot open the chat data file '", path, "'");
  std::vector<ChatExample> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    const ojson j = ojson::parse(line, nullptr, false);
    if (j.is_discarded()) fail(where, ": not valid JSON (one conversation per line)");
    for (ChatExample& e : chat_examples(chat, tok, j, where)) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

TokenData load_chat_data(const DataChoice& d, int64_t window, std::string* summary) {
  const Tokenizer tok = Tokenizer::load(d.tokenizer);
  const ChatConfig cfg = load_chat_config(d.tokenizer);
  if (cfg.chat_template.empty())
    fail("data.format \"chat\" needs a chat template: ", cfg.path, " has no chat_template");
  const api::ChatPromptBuilder chat(cfg.chat_template, cfg.bos_token, cfg.eos_token);
  std::vector<ChatExample> train, eval;
  for (const std::string& f : d.train_files)
    for (ChatExample& e : read_jsonl(f, chat, tok)) train.push_back(std::move(e));
  for (const std::string& f : d.eval_files)
    for (ChatExample& e : read_jsonl(f, chat, tok)) eval.push_back(std::move(e));
  if (d.eval_files.empty() && d.eval_fraction > 0) {
    const size_t n = size_t(double(train.size()) * d.eval_fraction);
    eval.assign(std::make_move_iterator(train.end() - std::ptrdiff_t(n)), std::make_move_iterator(train.end()));
    train.resize(train.size() - n);
  }
  const int32_t pad = tok.eos_id() >= 0 ? tok.eos_id() : 0;
  TokenData out;
  out.packed = true;
  const PackStats a = pack_examples(train, window, pad, out.train, out.train_answer);
  const PackStats b = pack_examples(eval, window, pad, out.eval, out.eval_answer);
  if (a.examples == 0) fail("the chat data holds no assistant answer to train on");
  if (summary) {
    std::ostringstream s;
    s << "chat data: " << a.examples << " examples in " << a.windows << " windows of " << window << " tokens ("
      << a.answer_tokens << " answer tokens, " << 100.0 * double(a.padding) / double(a.windows * window)
      << "% padding" << (a.cut ? ", " + std::to_string(a.cut) + " cut to one window" : "") << "); held out "
      << b.examples << " examples in " << b.windows << " windows";
    *summary = s.str();
  }
  return out;
}

}  // namespace dsv3::train
