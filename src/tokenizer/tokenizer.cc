#include "tokenizer/tokenizer.h"

#include "base/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace dsv3 {

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool split_special) const {
  const Impl& m = *impl_;
  std::string repaired;
  if (!utf8::valid(text)) {  // the regex engine needs valid UTF-8; HF bindings see U+FFFD here
    repaired = utf8::lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos) {
    if (m.bos_id < 0) fail("encode: a BOS token was requested but this tokenizer has none");
    ids.push_back(m.bos_id);
  }
  thread_local std::vector<tok::Segment> segments;
  thread_local std::vector<std::string_view> pieces;
  segments.clear();
  m.splitter->split(text, split_special, segments);
  for (const tok::Segment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    pieces.clear();
    m.pretok.split(s.text, pieces);
    for (std::string_view p : pieces) m.bpe->encode_word(p, ids);
  }
  return ids;
}

std::vector<std::string_view> Tokenizer::pre_tokenize(std::string_view text) const {
  std::vector<std::string_view> pieces;
  impl_->pretok.split(text, pieces);
  return pieces;
}

bool Tokenizer::is_valid_id(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->kind.size() && impl_->kind[size_t(id)] != Impl::kMissing;
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  if (!is_valid_id(id)) fail("unknown token id ", id, " (the vocabulary has ids 0..", vocab_size() - 1, ")");
  return impl_->bytes[size_t(id)];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (!is_valid_id(id)) fail("unknown token id ", id, " (the vocabulary has ids 0..", vocab_size() - 1, ")");
  return impl_->text[size_t(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    const std::string& b = token_bytes(id);
    if (skip_special && is_special(id)) continue;
    bytes += b;
  }
  return utf8::valid(bytes) ? bytes : utf8::lossy(bytes);
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token_text) const {
  const std::string key(token_text);
  if (auto it = impl_->added.find(key); it != impl_->added.end()) return it->second;
  if (auto it = impl_->vocab.find(key); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->kind.size()); }
bool Tokenizer::is_special(int32_t id) const {
  return is_valid_id(id) && impl_->kind[size_t(id)] == Impl::kAddedSpecial;
}
int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->eos_id; }
const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }
bool Tokenizer::add_bos_by_default() const { return impl_->add_bos; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

std::string StreamDecoder::push(int32_t id) {
  const std::string& b = tok_.token_bytes(id);
  if (skip_special_ && tok_.is_special(id)) return {};
  pending_ += b;
  std::string out;
  const size_t used = utf8::append_lossy(out, pending_, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace dsv3
