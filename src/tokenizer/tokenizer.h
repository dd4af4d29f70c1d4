// DeepSeek-V3's tokenizer: byte-level BPE loaded from a Hugging Face tokenizer.json (plus the
// tokenizer_config.json beside it), producing exactly the ids Hugging Face `tokenizers` does.
// Encoding: added tokens are cut out first, the rest goes through the pre-tokenizer's regex
// splits and BPE merges by rank. Decoding: token bytes concatenated, then invalid UTF-8 replaced
// by U+FFFD as Rust's from_utf8_lossy does over the whole output.
//
// Supported tokenizer.json features (anything else is rejected at load with a message naming
// it): model BPE (no dropout, no subword prefix/suffix); normalizer null or an empty Sequence;
// pre_tokenizer Split / ByteLevel (add_prefix_space false) / Sequence of these; post_processor
// null / ByteLevel / TemplateProcessing / Sequence; decoder ByteLevel.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3 {

class Tokenizer {
 public:
  //! path: a model folder (reads tokenizer.json, and tokenizer_config.json when present) or a
  //! tokenizer.json file (its sibling tokenizer_config.json is read when present). Throws
  //! dsv3::Error naming the file and the problem for missing or malformed files.
  static Tokenizer load(const std::string& path);

  //! Token ids of text. add_bos: prepend the BOS token (as transformers does when
  //! add_bos_token is set). split_special: added tokens marked special are not recognised in the
  //! text (Hugging Face's split_special_tokens=True) and are tokenized as ordinary text;
  //! non-special added tokens still are. Invalid UTF-8 in text is first replaced by U+FFFD
  //! (maximal-subpart rule), which is what any Hugging Face binding receives for such bytes.
  //! Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false, bool split_special = false) const;

  //! The pre-tokenizer's pieces of text (valid UTF-8), without added-token handling: what Hugging
  //! Face's pre_tokenizer.pre_tokenize_str returns, before byte-level respelling. Views into text,
  //! so text must outlive them.
  std::vector<std::string_view> pre_tokenize(std::string_view text) const;

  //! Text of ids; skip_special drops special added tokens. Invalid UTF-8 formed by the token
  //! bytes becomes U+FFFD exactly as Hugging Face decode. Throws dsv3::Error for an unknown id
  //! (Hugging Face silently drops those; here a wrong id is a bug worth hearing about).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  //! The raw bytes token `id` stands for (may be a fragment of a UTF-8 sequence). Throws for an
  //! unknown id.
  const std::string& token_bytes(int32_t id) const;
  //! Id of an added token by its content, or of a vocab entry by its (byte-level) spelling.
  std::optional<int32_t> token_id(std::string_view token_text) const;
  //! The token's text as tokenizer.json spells it (byte-level form for vocab entries).
  const std::string& token_text(int32_t id) const;

  int32_t vocab_size() const;  //!< highest id + 1
  bool is_special(int32_t id) const;
  bool is_valid_id(int32_t id) const;
  int32_t bos_id() const;  //!< -1 when absent
  int32_t eos_id() const;  //!< -1 when absent
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  bool add_bos_by_default() const;          //!< tokenizer_config add_bos_token
  const std::string& chat_template() const;  //!< tokenizer_config chat_template ("" if none)

  struct Impl;
  //! Internals (tokenizer_impl.h), for tests and tools that check stages one at a time.
  const Impl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable once loaded; copies share it
};

//! Turns ids arriving one at a time into text without ever emitting part of a UTF-8 sequence:
//! bytes of an incomplete sequence wait for the next token. Bytes that can never become valid are
//! emitted as U+FFFD at once, so the concatenation of every push() and the final flush() equals
//! Tokenizer::decode of all the ids. Not thread-safe; the Tokenizer must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& t, bool skip_special = false) : tok_(t), skip_special_(skip_special) {}
  //! Complete UTF-8 text now available (possibly empty). Throws dsv3::Error for an unknown id.
  std::string push(int32_t id);
  //! Whatever remains: a dangling partial sequence becomes U+FFFD. The decoder is then empty.
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete trailing UTF-8 sequence
};

}  // namespace dsv3
