#include "api/tool_calls.h"

#include <cctype>
#include <random>
#include <utility>

#include "api/text_scan.h"

namespace dsv3::api {
namespace {

using detail::is_space;
using detail::partial_marker_suffix;
using detail::utf8_safe_cut;
constexpr size_t npos = std::string::npos;

// A header (call-begin to tool-sep, or the V3 name line) longer than this is not a call: it
// bounds how long text can be held back waiting for a separator that never comes.
constexpr size_t kMaxHeader = 256;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.' || c == ':';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!name_char(c)) return false;
  return true;
}

bool is_proper_prefix(std::string_view text, std::string_view marker) {
  return text.size() < marker.size() && marker.substr(0, text.size()) == text;
}

// Where the closing junk before position `end` starts: whitespace, a ``` fence, whitespace
// (what V3 puts between the arguments and call-end).
size_t junk_start(std::string_view s, size_t end) {
  size_t j = end;
  while (j > 0 && is_space(s[j - 1])) --j;
  for (int k = 0; k < 3 && j > 0 && s[j - 1] == '`'; ++k) --j;
  while (j > 0 && is_space(s[j - 1])) --j;
  return j;
}

// The first of `markers` in s: position and which (npos / -1 if none).
std::pair<size_t, int> find_first(std::string_view s, std::initializer_list<std::string_view> markers) {
  size_t best = npos;
  int which = -1, i = 0;
  for (std::string_view m : markers) {
    const size_t p = s.find(m);
    if (p < best) best = p, which = i;
    ++i;
  }
  return {best, which};
}

}  // namespace

nlohmann::ordered_json ParsedToolCall::to_json() const {
  return {{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
}

std::string random_tool_call_id() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[gen() % (sizeof kAlphabet - 1)];
  return id;
}

ToolCallParser::ToolCallParser(IdMaker make_id) : make_id_(std::move(make_id)) {
  if (!make_id_) make_id_ = [](int) { return random_tool_call_id(); };
}

std::vector<ToolCallEvent> ToolCallParser::push(std::string_view text) {
  buf_.append(text);
  while (step(false)) {
  }
  return std::exchange(out_, {});
}

std::vector<ToolCallEvent> ToolCallParser::finish() {
  if (finished_) return {};
  finished_ = true;
  while (step(true)) {
  }
  return std::exchange(out_, {});
}

nlohmann::ordered_json ToolCallParser::tool_calls_json() const {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const ParsedToolCall& c : calls_) a.push_back(c.to_json());
  return a;
}

std::string ToolCallParser::finish_reason(std::string_view engine_reason) const {
  if (!calls_.empty() && engine_reason == "stop") return "tool_calls";
  return std::string(engine_reason);
}

void ToolCallParser::emit_content(std::string_view text) {
  if (text.empty()) return;
  content_.append(text);
  if (!out_.empty() && out_.back().kind == ToolCallEvent::Kind::Content) {
    out_.back().text.append(text);
    return;
  }
  ToolCallEvent e;
  e.text = std::string(text);
  out_.push_back(std::move(e));
}

void ToolCallParser::emit_arguments(std::string_view text) {
  if (text.empty()) return;
  const int index = int(calls_.size()) - 1;
  calls_.back().arguments.append(text);
  if (!out_.empty() && out_.back().kind == ToolCallEvent::Kind::Arguments && out_.back().index == index) {
    out_.back().text.append(text);
    return;
  }
  ToolCallEvent e;
  e.kind = ToolCallEvent::Kind::Arguments;
  e.index = index;
  e.text = std::string(text);
  out_.push_back(std::move(e));
}

void ToolCallParser::consume(size_t n, bool keep_raw) {
  if (keep_raw) raw_.append(buf_, 0, n);
  buf_.erase(0, n);
}

void ToolCallParser::start_call(std::string name, bool v3) {
  raw_.clear();
  block_has_call_ = true;
  ParsedToolCall c;
  c.id = make_id_(int(calls_.size()));
  c.name = std::move(name);
  ToolCallEvent e;
  e.kind = ToolCallEvent::Kind::CallStart;
  e.index = int(calls_.size());
  e.id = c.id;
  e.name = c.name;
  calls_.push_back(std::move(c));
  out_.push_back(std::move(e));
  state_ = v3 ? State::Fence : State::ArgsStart;
}

void ToolCallParser::end_call(bool complete) {
  calls_.back().complete = complete;
  raw_.clear();
}

void ToolCallParser::malformed() {
  emit_content(raw_);
  raw_.clear();
  in_block_ = false;
  state_ = State::Content;
}

bool ToolCallParser::step(bool final) {
  switch (state_) {
    case State::Content: {
      const auto [p, which] = find_first(buf_, {kToolCallsBegin, kToolCallBegin});
      if (p != npos) {
        emit_content(std::string_view(buf_).substr(0, p));
        buf_.erase(0, p);
        raw_.clear();
        in_block_ = which == 0;
        block_has_call_ = false;
        consume(which == 0 ? kToolCallsBegin.size() : kToolCallBegin.size(), true);
        state_ = which == 0 ? State::Block : State::Header;
        return true;
      }
      const size_t cut =
          final ? buf_.size()
                : utf8_safe_cut(buf_, buf_.size() - partial_marker_suffix(buf_, {kToolCallsBegin, kToolCallBegin}));
      emit_content(std::string_view(buf_).substr(0, cut));
      buf_.erase(0, cut);
      return false;
    }

    case State::Block: {
      size_t i = 0;
      while (i < buf_.size() && is_space(buf_[i])) ++i;
      consume(i, true);
      if (buf_.starts_with(kToolCallBegin)) {
        consume(kToolCallBegin.size(), true);
        state_ = State::Header;
        return true;
      }
      if (buf_.starts_with(kToolCallsEnd)) {
        consume(kToolCallsEnd.size(), true);
        if (!block_has_call_) emit_content(raw_);  // an empty block is not a tool call
        raw_.clear();
        in_block_ = false;
        state_ = State::Content;
        return true;
      }
      if (!final && (buf_.empty() || is_proper_prefix(buf_, kToolCallBegin) || is_proper_prefix(buf_, kToolCallsEnd)))
        return false;
      // Other text (or the end): the block is over; before any call it was never a block.
      if (!block_has_call_) emit_content(raw_);
      raw_.clear();
      in_block_ = false;
      state_ = State::Content;
      return true;
    }

    case State::Header: {
      const size_t sep = buf_.find(kToolSep);
      const std::string_view head = std::string_view(buf_).substr(0, sep);
      const bool broken = head.find('\n') != npos ||
                          find_first(head, {kToolCallsBegin, kToolCallBegin, kToolCallEnd, kToolCallsEnd}).first != npos;
      if (sep == npos) {
        const size_t settled = buf_.size() - partial_marker_suffix(buf_, {kToolSep});
        if (broken || settled > kMaxHeader || final) {
          malformed();
          return true;
        }
        return false;
      }
      if (broken || sep > kMaxHeader) {
        malformed();
        return true;
      }
      const std::string name(trim(head));
      consume(sep + kToolSep.size(), true);
      if (name == "function") {
        state_ = State::Name;
        return true;
      }
      if (!valid_name(name)) {
        malformed();
        return true;
      }
      start_call(name, /*v3=*/false);
      return true;
    }

    case State::Name: {
      size_t i = 0;
      while (i < buf_.size() && buf_[i] == ' ') ++i;
      // V3.1 call of a function that is itself named "function": arguments follow at once.
      if (i < buf_.size() && (buf_[i] == '{' || buf_[i] == '[')) {
        start_call("function", /*v3=*/false);
        return true;
      }
      const size_t nl = buf_.find('\n');
      const std::string_view line = std::string_view(buf_).substr(0, nl);
      bool ok = line.size() <= kMaxHeader;
      for (char c : line) ok &= name_char(c) || c == ' ' || c == '\t' || c == '\r';
      if (!ok || (nl == npos && final)) {
        malformed();
        return true;
      }
      if (nl == npos) return false;
      const std::string name(trim(line));
      if (!valid_name(name)) {
        malformed();
        return true;
      }
      consume(nl + 1, true);
      start_call(name, /*v3=*/true);
      return true;
    }

    case State::Fence:
    case State::FenceLang:
    case State::ArgsStart: {
      if (final) break;
      size_t i = 0;
      if (state_ == State::FenceLang)
        while (i < buf_.size() && std::isalpha(static_cast<unsigned char>(buf_[i]))) ++i;
      else
        while (i < buf_.size() && is_space(buf_[i])) ++i;
      consume(i, false);
      if (buf_.empty()) return false;
      if (state_ == State::Fence) {
        if (buf_.starts_with("```")) {
          consume(3, false);
          state_ = State::FenceLang;
          return true;
        }
        if (is_proper_prefix(buf_, "```")) return false;
      }
      state_ = state_ == State::FenceLang ? State::ArgsStart : State::Args;
      return true;
    }

    case State::Args: {
      const auto [p, which] = find_first(buf_, {kToolCallEnd, kToolCallsEnd, kToolCallBegin, kToolCallsBegin});
      if (p != npos) {
        emit_arguments(std::string_view(buf_).substr(0, junk_start(buf_, p)));
        end_call(true);
        buf_.erase(0, p);
        switch (which) {
          case 0:  // call-end: the next call or the block's end may follow
            consume(kToolCallEnd.size(), false);
            state_ = in_block_ ? State::Block : State::Content;
            break;
          case 1:  // calls-end without call-end
            consume(kToolCallsEnd.size(), false);
            in_block_ = false;
            state_ = State::Content;
            break;
          case 2:  // the next call began without call-end
            consume(kToolCallBegin.size(), true);
            state_ = State::Header;
            break;
          default:  // a new block: Content starts it
            in_block_ = false;
            state_ = State::Content;
        }
        return true;
      }
      if (final) break;
      const size_t held =
          partial_marker_suffix(buf_, {kToolCallEnd, kToolCallsEnd, kToolCallBegin, kToolCallsBegin});
      const size_t cut = utf8_safe_cut(buf_, junk_start(buf_, buf_.size() - held));
      emit_arguments(std::string_view(buf_).substr(0, cut));
      buf_.erase(0, cut);
      return false;
    }
  }
  // The end inside a committed call: keep what arrived, minus closing junk.
  if (state_ == State::Args) {
    const size_t held =
        partial_marker_suffix(buf_, {kToolCallEnd, kToolCallsEnd, kToolCallBegin, kToolCallsBegin});
    emit_arguments(std::string_view(buf_).substr(0, junk_start(buf_, buf_.size() - held)));
  }
  buf_.clear();
  end_call(false);
  in_block_ = false;
  state_ = State::Content;
  return true;
}

}  // namespace dsv3::api
