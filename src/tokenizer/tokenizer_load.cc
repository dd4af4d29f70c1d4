// Loading tokenizer.json / tokenizer_config.json into Tokenizer::Impl. Every feature the file
// may ask for is either implemented exactly or rejected here with the file and key named, so a
// tokenizer that loads is one we reproduce.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::parse_error& e) {
    fail(path.string(), ": not valid JSON (", e.what(), ")");
  }
}

std::string type_of(const json& j) {
  if (!j.is_object()) return "";
  const auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool flag(const json& j, const char* key, bool dflt) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

// bos_token / eos_token in tokenizer_config.json: a string or an AddedToken object.
std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return "";
}

// Ids size the per-id tables, so an absurd id in a damaged file must fail, not allocate.
constexpr int64_t kMaxId = (int64_t(1) << 24) - 1;
constexpr const char* kIdRange = " (ids must lie in 0..16777215)";

tok::SplitBehavior parse_behavior(const std::string& file, const std::string& b) {
  if (b == "Isolated") return tok::SplitBehavior::Isolated;
  if (b == "Removed") return tok::SplitBehavior::Removed;
  if (b == "MergedWithPrevious") return tok::SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return tok::SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return tok::SplitBehavior::Contiguous;
  fail(file, ": pre_tokenizer Split behavior '", b, "' is unknown");
}

// Flattens the pre_tokenizer into Split steps; ByteLevel must come last (steps after it would
// see byte-level spelling, which the BPE stage produces itself).
void parse_pretokenizer(const std::string& file, const json& j, tok::PreTokenizer& out, bool& byte_level) {
  if (j.is_null()) return;
  const std::string type = type_of(j);
  if (byte_level) fail(file, ": pre_tokenizer step '", type, "' after ByteLevel is not supported");
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      fail(file, ": pre_tokenizer Sequence has no 'pretokenizers' array");
    for (const json& p : j["pretokenizers"]) parse_pretokenizer(file, p, out, byte_level);
  } else if (type == "Split") {
    const json& pat = j.value("pattern", json());
    std::string source;
    bool literal = false;
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      source = pat["Regex"].get<std::string>();
    } else if (pat.contains("String") && pat["String"].is_string()) {
      source = pat["String"].get<std::string>();
      literal = true;
    } else {
      fail(file, ": pre_tokenizer Split has no pattern {\"Regex\": ...} or {\"String\": ...}");
    }
    out.add({tok::Regex(source, literal), parse_behavior(file, j.value("behavior", std::string("Isolated"))),
             flag(j, "invert", false)});
  } else if (type == "ByteLevel") {
    if (flag(j, "add_prefix_space", true))
      fail(file, ": pre_tokenizer ByteLevel with add_prefix_space = true is not supported");
    if (flag(j, "use_regex", true)) out.add({tok::Regex(tok::kGpt2Pattern), tok::SplitBehavior::Isolated, false});
    byte_level = true;
  } else {
    fail(file, ": pre_tokenizer type '", type, "' is not supported (only Sequence, Split, ByteLevel)");
  }
}

// The BOS a post_processor adds in front of a single sequence (-1: none).
int32_t parse_post_processor(const std::string& file, const json& j) {
  if (j.is_null()) return -1;
  const std::string type = type_of(j);
  if (type == "ByteLevel") return -1;  // offsets only
  if (type == "Sequence") {
    int32_t bos = -1;
    for (const json& p : j.value("processors", json::array())) {
      const int32_t b = parse_post_processor(file, p);
      if (b >= 0) bos = b;
    }
    return bos;
  }
  if (type == "TemplateProcessing") {
    const json single = j.value("single", json::array());
    for (const json& piece : single) {
      if (piece.contains("Sequence")) return -1;  // reached $A: nothing in front
      if (piece.contains("SpecialToken")) {
        const std::string name = piece["SpecialToken"].value("id", std::string());
        const json& st = j.value("special_tokens", json::object());
        if (!st.contains(name) || !st[name].contains("ids") || st[name]["ids"].size() != 1)
          fail(file, ": post_processor template token '", name, "' is not a single-id special token");
        return st[name]["ids"][0].get<int32_t>();
      }
    }
    return -1;
  }
  fail(file, ": post_processor type '", type, "' is not supported (only ByteLevel, TemplateProcessing)");
}

std::shared_ptr<Tokenizer::Impl> load_impl(const std::string& path);

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  try {
    return Tokenizer(load_impl(path));
  } catch (const json::exception& e) {  // a key of the wrong JSON type somewhere
    fail(path, ": malformed tokenizer files (", e.what(), ")");
  }
}

namespace {

std::shared_ptr<Tokenizer::Impl> load_impl(const std::string& path) {
  using Impl = Tokenizer::Impl;
  const fs::path p(path);
  fs::path json_path = p, config_path;
  if (fs::is_directory(p)) {
    json_path = p / "tokenizer.json";
    if (!fs::exists(json_path)) fail(path, ": no tokenizer.json in this folder");
  } else if (!fs::exists(p)) {
    fail("tokenizer not found: ", path, " (expected a model folder or a tokenizer.json file)");
  }
  config_path = json_path.parent_path() / "tokenizer_config.json";
  const std::string file = json_path.string();

  const json j = read_json(json_path);
  if (!j.is_object()) fail(file, ": expected a JSON object at the top level");
  auto m = std::make_shared<Impl>();

  // --- model -------------------------------------------------------------------------------
  if (!j.contains("model") || !j["model"].is_object()) fail(file, ": no 'model' object");
  const json& model = j["model"];
  const std::string mtype = type_of(model);
  if (!mtype.empty() && mtype != "BPE") fail(file, ": model type '", mtype, "' is not supported (only BPE)");
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail(file, ": model has no 'vocab' object");
  if (!model.contains("merges") || !model["merges"].is_array()) fail(file, ": model has no 'merges' array");
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
    fail(file, ": BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      fail(file, ": BPE ", key, " is not supported");

  int32_t max_id = -1;
  m->vocab.reserve(model["vocab"].size());
  for (const auto& [tok_text, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxId)
      fail(file, ": vocab entry '", tok_text, "' has no valid id", kIdRange);
    m->vocab.emplace(tok_text, id.get<int32_t>());
    max_id = std::max(max_id, id.get<int32_t>());
  }

  // --- added tokens ------------------------------------------------------------------------
  std::vector<tok::AddedToken> added;
  for (const json& a : j.value("added_tokens", json::array())) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string())
      fail(file, ": added_tokens entry without integer 'id' and string 'content': ", a.dump());
    tok::AddedToken t;
    const int64_t id = a["id"].get<int64_t>();
    if (id < 0 || id > kMaxId) fail(file, ": added token '", a["content"].get<std::string>(), "' has id ", id, kIdRange);
    t.id = int32_t(id);
    t.content = a["content"].get<std::string>();
    t.single_word = flag(a, "single_word", false);
    t.lstrip = flag(a, "lstrip", false);
    t.rstrip = flag(a, "rstrip", false);
    t.normalized = flag(a, "normalized", !flag(a, "special", false));
    t.special = flag(a, "special", false);
    m->added[t.content] = t.id;
    max_id = std::max(max_id, t.id);
    added.push_back(std::move(t));
  }

  // --- id tables: spelling and raw bytes of every id ---------------------------------------------
  const size_t n = size_t(max_id) + 1;
  m->text.resize(n);
  m->bytes.resize(n);
  m->kind.assign(n, Impl::kMissing);
  for (const auto& [tok_text, id] : m->vocab) {
    if (m->kind[size_t(id)] != Impl::kMissing) continue;
    m->kind[size_t(id)] = Impl::kVocab;
    m->text[size_t(id)] = tok_text;
  }
  for (const tok::AddedToken& t : added) {
    m->kind[size_t(t.id)] = t.special ? Impl::kAddedSpecial : Impl::kAdded;
    m->text[size_t(t.id)] = t.content;
  }
  for (size_t id = 0; id < n; ++id) {
    // As Hugging Face's ByteLevel decoder: a token entirely in the byte alphabet stands for those
    // bytes; any other token (e.g. "<｜User｜>") stands for its own UTF-8.
    auto raw = tok::byte_level_decode(m->text[id]);
    m->bytes[id] = raw ? std::move(*raw) : m->text[id];
  }

  // --- merges --------------------------------------------------------------------------------
  auto vocab_id = [&](const std::string& s, size_t rank, const std::string& merge) {
    const auto it = m->vocab.find(s);
    if (it == m->vocab.end())
      fail(file, ": merge #", rank, " '", merge, "' refers to '", s, "', which is not in the vocab");
    return it->second;
  };
  std::vector<tok::Merge> merges;
  merges.reserve(model["merges"].size());
  for (const json& mj : model["merges"]) {
    const size_t rank = merges.size();
    std::string a, b;
    if (mj.is_string()) {  // "left right" (the older serialization)
      const std::string s = mj.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(file, ": merge #", rank, " '", s, "' is not two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
      a = mj[0].get<std::string>();
      b = mj[1].get<std::string>();
    } else {
      fail(file, ": merge #", rank, " is neither \"a b\" nor [\"a\", \"b\"]: ", mj.dump());
    }
    const std::string label = a + " " + b;
    merges.push_back({vocab_id(a, rank, label), vocab_id(b, rank, label), vocab_id(a + b, rank, label)});
  }

  std::vector<int32_t> byte_ids(256, -1);
  for (int b = 0; b < 256; ++b) {
    const auto it = m->vocab.find(tok::byte_level_encode(std::string(1, char(b))));
    if (it != m->vocab.end()) byte_ids[size_t(b)] = it->second;
  }
  int32_t unk_id = -1;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string unk = model["unk_token"].get<std::string>();
    const auto it = m->vocab.find(unk);
    if (it == m->vocab.end()) fail(file, ": unk_token '", unk, "' is not in the vocab");
    unk_id = it->second;
  }
  std::unordered_map<std::string, int32_t> whole_words;
  if (flag(model, "ignore_merges", false))
    for (const auto& [tok_text, id] : m->vocab)
      if (auto raw = tok::byte_level_decode(tok_text)) whole_words.emplace(std::move(*raw), id);
  m->bpe = std::make_unique<tok::Bpe>(byte_ids, merges, unk_id, std::move(whole_words));
  m->splitter = std::make_unique<tok::AddedTokenSplitter>(added);

  // --- pipeline ------------------------------------------------------------------------------
  const json& norm = j.value("normalizer", json());
  if (!norm.is_null() && !(type_of(norm) == "Sequence" && norm.value("normalizers", json::array()).empty()))
    fail(file, ": normalizer '", type_of(norm), "' is not supported (only none or an empty Sequence)");
  bool byte_level = false;
  parse_pretokenizer(file, j.value("pre_tokenizer", json()), m->pretok, byte_level);
  if (!byte_level) fail(file, ": pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
  const json& dec = j.value("decoder", json());
  if (type_of(dec) != "ByteLevel") fail(file, ": decoder '", type_of(dec), "' is not supported (only ByteLevel)");
  const int32_t template_bos = parse_post_processor(file, j.value("post_processor", json()));

  // --- tokenizer_config.json -------------------------------------------------------------------
  json cfg = json::object();
  if (fs::exists(config_path)) {
    cfg = read_json(config_path);
    if (!cfg.is_object()) fail(config_path.string(), ": expected a JSON object at the top level");
  }
  const std::string cfg_file = config_path.string();
  auto resolve = [&](const char* key, std::string& token, int32_t& id) {
    if (!cfg.contains(key) || cfg[key].is_null()) return;
    token = token_content(cfg[key]);
    const auto a = m->added.find(token);
    const auto v = m->vocab.find(token);
    if (a != m->added.end()) id = a->second;
    else if (v != m->vocab.end()) id = v->second;
    else fail(cfg_file, ": ", key, " '", token, "' is not a token of ", file);
  };
  resolve("bos_token", m->bos_token, m->bos_id);
  resolve("eos_token", m->eos_token, m->eos_id);
  if (m->bos_id < 0 && template_bos >= 0) {
    m->bos_id = template_bos;
    m->bos_token = m->text[size_t(template_bos)];
  }
  m->add_bos = cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean() ? cfg["add_bos_token"].get<bool>()
                                                                                  : template_bos >= 0;
  if (cfg.contains("chat_template")) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      m->chat_template = ct.get<std::string>();
    } else if (ct.is_array() && !ct.empty()) {  // [{name, template}, ...]: "default", else the first
      const json* pick = &ct[0];
      for (const json& e : ct)
        if (e.is_object() && e.value("name", std::string()) == "default") pick = &e;
      m->chat_template = pick->value("template", std::string());
    }
  }
  return m;
}

}  // namespace
}  // namespace dsv3
