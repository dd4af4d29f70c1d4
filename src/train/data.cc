#include "train/data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::train {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", what, " '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tokenizer_json_path(const std::string& p) {
  return fs::is_directory(p) ? (fs::path(p) / "tokenizer.json").string() : p;
}

uint64_t fnv(uint64_t h, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
uint64_t fnv(uint64_t h, const std::string& s) {
  const uint64_t n = s.size();
  return fnv(fnv(h, &n, 8), s.data(), s.size());
}

constexpr char kMagic[8] = {'D', 'S', 'V', '3', 'T', 'O', 'K', '1'};

bool read_cache(const fs::path& p, TokenData& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  char magic[8];
  uint64_t n[2];
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !in.read(reinterpret_cast<char*>(n), 16)) return false;
  if (n[0] > (1ull << 40) || n[1] > (1ull << 40)) return false;
  out.train.resize(n[0]);
  out.eval.resize(n[1]);
  if (!in.read(reinterpret_cast<char*>(out.train.data()), std::streamsize(n[0] * 4)) ||
      !in.read(reinterpret_cast<char*>(out.eval.data()), std::streamsize(n[1] * 4)))
    return false;
  return true;
}

void write_cache(const fs::path& p, const TokenData& d) {
  fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    const uint64_t n[2] = {d.train.size(), d.eval.size()};
    out.write(kMagic, 8);
    out.write(reinterpret_cast<const char*>(n), 16);
    out.write(reinterpret_cast<const char*>(d.train.data()), std::streamsize(d.train.size() * 4));
    out.write(reinterpret_cast<const char*>(d.eval.data()), std::streamsize(d.eval.size() * 4));
    if (!out) fail("cannot write the token cache '", tmp.string(), "'");
  }
  fs::rename(tmp, p);
}

}  // namespace

TokenData load_token_data(const DataChoice& d, const std::string& cache_dir) {
  const std::string tok_path = tokenizer_json_path(d.tokenizer);
  std::vector<std::string> train_text, eval_text;
  for (const std::string& f : d.train_files) train_text.push_back(read_file(f, "training text file"));
  for (const std::string& f : d.eval_files) eval_text.push_back(read_file(f, "evaluation text file"));

  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, read_file(tok_path, "tokenizer"));
  // BOS / EOS come from tokenizer_config.json, so it is part of the key too.
  const fs::path tok_cfg = fs::path(tok_path).parent_path() / "tokenizer_config.json";
  h = fnv(h, fs::exists(tok_cfg) ? read_file(tok_cfg.string(), "tokenizer config") : std::string());
  for (const std::string& t : train_text) h = fnv(h, t);
  h = fnv(h, std::string("|eval|"));
  for (const std::string& t : eval_text) h = fnv(h, t);
  const double frac = d.eval_files.empty() ? d.eval_fraction : 0.0;
  const uint8_t flags[2] = {uint8_t(d.add_bos), uint8_t(d.add_eos)};
  h = fnv(fnv(h, flags, 2), &frac, sizeof frac);
  char name[40];
  std::snprintf(name, sizeof name, "tokens-%016llx.bin", static_cast<unsigned long long>(h));
  const fs::path cache = cache_dir.empty() ? fs::path() : fs::path(cache_dir) / name;

  TokenData out;
  if (!cache.empty() && read_cache(cache, out)) {
    out.from_cache = true;
    return out;
  }
  const Tokenizer tok = Tokenizer::load(d.tokenizer);
  auto encode_all = [&](const std::vector<std::string>& texts, std::vector<int32_t>& ids) {
    for (const std::string& t : texts) {
      if (d.add_bos && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
      const std::vector<int32_t> part = tok.encode(t);
      ids.insert(ids.end(), part.begin(), part.end());
      if (d.add_eos && tok.eos_id() >= 0) ids.push_back(tok.eos_id());
    }
  };
  encode_all(train_text, out.train);
  if (!eval_text.empty()) {
    encode_all(eval_text, out.eval);
  } else if (frac > 0) {
    const size_t n_eval = size_t(double(out.train.size()) * frac);
    out.eval.assign(out.train.end() - std::ptrdiff_t(n_eval), out.train.end());
    out.train.resize(out.train.size() - n_eval);
  }
  if (!cache.empty()) write_cache(cache, out);
  return out;
}

bool replay_window(int64_t g, double share) {
  if (share <= 0) return false;
  return std::floor(double(g + 1) * share) > std::floor(double(g) * share);
}

const int32_t* replay_tokens(const int32_t* seq, int64_t window, int32_t bos, std::vector<int32_t>& buf) {
  if (bos < 0) return seq;
  buf.assign(seq, seq + window);
  buf[0] = bos;
  return buf.data();
}

WindowSampler::WindowSampler(const std::vector<int32_t>& tokens, int64_t window, uint64_t seed, bool aligned)
    : tokens_(tokens), window_(window), aligned_(aligned) {
  if (window < 2) fail("a training window needs at least 2 tokens, got ", window);
  if (int64_t(tokens.size()) < window)
    fail("the training text has ", tokens.size(), " tokens, fewer than one window of seq_len+1 = ", window,
         " tokens; add text or lower seq_len");
  state_.epoch_rng = Rng(seed ^ 0x5eed0fda7a5a3b1eull).next();  // decorrelated from weight init
  start_epoch();
}

void WindowSampler::start_epoch() {
  Rng rng(state_.epoch_rng);
  const int64_t stride = aligned_ ? window_ : window_ - 1;
  const int64_t n = int64_t(tokens_.size());
  // An offset only when the stream has room for it, so tiny streams still yield a window.
  const int64_t slack = n - window_;
  offset_ = aligned_ ? 0 : int64_t(rng.below(uint64_t(std::min(stride, slack + 1))));
  const int64_t count = (n - offset_ - window_) / stride + 1;
  order_.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) order_[size_t(i)] = i;
  for (int64_t i = count - 1; i > 0; --i) std::swap(order_[size_t(i)], order_[size_t(rng.below(uint64_t(i + 1)))]);
  next_epoch_rng_ = rng.state();
}

const int32_t* WindowSampler::next() {
  if (state_.cursor == int64_t(order_.size())) {
    state_.epoch_rng = next_epoch_rng_;
    ++state_.epoch;
    state_.cursor = 0;
    start_epoch();
  }
  const int64_t k = order_[size_t(state_.cursor++)];
  return tokens_.data() + offset_ + k * (aligned_ ? window_ : window_ - 1);
}

void WindowSampler::restore(const State& s) {
  state_ = s;
  start_epoch();
  if (s.cursor < 0 || s.cursor > int64_t(order_.size()))
    fail("data sampler state is inconsistent with the data (cursor ", s.cursor, " of ", order_.size(),
         " windows): was the training text changed?");
}

std::vector<const int32_t*> eval_windows(const std::vector<int32_t>& tokens, int64_t window, int64_t count) {
  std::vector<const int32_t*> out;
  for (int64_t k = 0; k < count && (k + 1) * window <= int64_t(tokens.size()); ++k) out.push_back(tokens.data() + k * window);
  return out;
}

}  // namespace dsv3::train
