// `dsv3 train-tokenizer`: learns a byte-level BPE with DeepSeek-V3's pre-tokenizer from text
// files and writes tokenizer.json + tokenizer_config.json (src/tokenizer/trained_tokenizer.h).
// Files are read in blocks and cut only where the pre-tokenizer cannot join across the cut
// (tok::safe_cut_after), so the counts are those of each file taken whole; the pieces are
// counted in parallel, one word table per thread.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/error.h"
#include "threading/pool.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/deepseek_v3_layout.h"
#include "tokenizer/trained_tokenizer.h"

namespace dsv3::app {
namespace {

namespace fs = std::filesystem;

struct TrainOptions {
  int64_t vocab = 0;
  std::string out;
  int64_t min_frequency = 2;
  int64_t model_max_length = 131072;
  std::vector<std::string> files;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Counts the words of one file into counters (one per pool thread); returns its size in bytes.
uint64_t count_file(const std::string& path, ThreadPool& pool, std::vector<std::unique_ptr<tok::WordCounter>>& counters) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("train-tokenizer: cannot open ", path);
  constexpr size_t kBlock = size_t(4) << 20;
  const size_t pieces_per_block = size_t(pool.size()) * 4;
  std::string buf;
  uint64_t total = 0;
  std::vector<size_t> cuts;
  bool eof = false;
  while (!eof) {
    const size_t kept = buf.size();
    buf.resize(kept + kBlock);
    in.read(buf.data() + kept, std::streamsize(kBlock));
    const size_t got = size_t(in.gcount());
    if (in.bad()) fail("train-tokenizer: error reading ", path);
    buf.resize(kept + got);
    total += got;
    eof = !in;
    // Cut points spread over the buffer; unless the file is done, the text after the last cut
    // waits for the next block (it may continue a word).
    cuts.assign(1, 0);
    for (size_t i = 1; i <= pieces_per_block; ++i) {
      const size_t c = tok::safe_cut_after(buf, std::max(buf.size() * i / pieces_per_block, cuts.back()));
      if (c >= buf.size()) break;
      if (c > cuts.back()) cuts.push_back(c);
    }
    if (eof && cuts.back() != buf.size()) cuts.push_back(buf.size());
    const std::string_view text(buf);
    pool.parallel_for(int64_t(cuts.size()) - 1, [&](int thread, int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k)
        counters[size_t(thread)]->add_text(text.substr(cuts[size_t(k)], cuts[size_t(k) + 1] - cuts[size_t(k)]));
    });
    buf.erase(0, cuts.back());
  }
  return total;
}

void run_train_tokenizer(const TrainOptions& o, ThreadPool& pool) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.vocab < tok::kTrainedMinVocab)
    fail("train-tokenizer: --vocab ", o.vocab, " is too small: the 256 byte tokens and ", tok::kTrainedAddedTokens,
         " special tokens alone take ", tok::kTrainedMinVocab);
  if (o.vocab > (int64_t(1) << 24)) fail("train-tokenizer: --vocab ", o.vocab, " is too large (at most 16777216)");
  if (o.min_frequency < 1) fail("train-tokenizer: --min-frequency must be at least 1");
  for (const std::string& f : o.files) {
    if (!fs::exists(f)) fail("train-tokenizer: no such file: ", f);
    if (fs::is_directory(f)) fail("train-tokenizer: ", f, " is a folder, not a text file");
  }

  const tok::PreTokenizer pretok = tok::deepseek_v3_pretokenizer();
  std::vector<tok::AddedToken> added;
  for (const tok::TokenSpec& t : tok::kLeadingTokens) added.push_back(tok::to_added_token(t, int32_t(added.size())));
  for (const tok::TokenSpec& t : tok::kTrailingTokens) added.push_back(tok::to_added_token(t, int32_t(added.size())));
  const tok::AddedTokenSplitter splitter(added);

  std::vector<std::unique_ptr<tok::WordCounter>> counters;
  for (int i = 0; i < pool.size(); ++i) counters.push_back(std::make_unique<tok::WordCounter>(pretok, &splitter));
  uint64_t bytes = 0;
  for (const std::string& f : o.files) bytes += count_file(f, pool, counters);
  for (size_t i = 1; i < counters.size(); ++i) counters[0]->merge_from(*counters[i]);
  const tok::WordCounter& words = *counters[0];
  if (words.total_words() == 0) fail("train-tokenizer: the input files hold no text to learn from");
  const double count_s = seconds_since(t0);
  std::fprintf(stderr, "train-tokenizer: %zu file(s), %.2f MB, %lld words (%zu distinct) counted in %.2f s\n",
               o.files.size(), double(bytes) / 1e6, (long long)words.total_words(), words.counts().size(), count_s);

  tok::BpeTrainerOptions topt;
  topt.max_merges = size_t(o.vocab - tok::kTrainedMinVocab);
  topt.min_frequency = o.min_frequency;
  topt.progress = [](size_t done, size_t max) {
    std::fprintf(stderr, "train-tokenizer: %zu / %zu merges\n", done, max);
  };
  const auto t1 = std::chrono::steady_clock::now();
  const tok::BpeModel model = tok::train_bpe(words.counts(), topt);
  const double merge_s = seconds_since(t1);

  fs::create_directories(o.out);
  auto write = [&](const char* name, const std::string& text) {
    const fs::path p = fs::path(o.out) / name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(text.data(), std::streamsize(text.size()));
    if (!f.flush()) fail("train-tokenizer: cannot write ", p.string());
  };
  write("tokenizer.json", tok::trained_tokenizer_json(model));
  write("tokenizer_config.json", tok::trained_tokenizer_config_json(o.model_max_length));

  const int32_t vocab = tok::trained_vocab_size(model.merges.size());
  if (vocab < o.vocab)
    std::fprintf(stderr,
                 "train-tokenizer: stopped after %zu merges: no pair occurs %lld times or more; the vocabulary has "
                 "%d ids, not %lld\n",
                 model.merges.size(), (long long)o.min_frequency, vocab, (long long)o.vocab);
  std::fprintf(stderr,
               "train-tokenizer: wrote %s: vocab %d (256 bytes + %zu merges + %d added tokens), bos_token_id %d, "
               "eos_token_id %d; merges %.2f s, total %.2f s\n",
               o.out.c_str(), vocab, model.merges.size(), tok::kTrainedAddedTokens, tok::kBosId, tok::kEosId, merge_s,
               seconds_since(t0));
}

}  // namespace

void add_train_tokenizer(CLI::App& app, AppContext& ctx) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train-tokenizer", "learn a byte-level BPE with DeepSeek-V3's pre-tokenizer and special tokens from text files");
  cmd->add_option("--vocab", o->vocab, "vocabulary size: 256 bytes + merges + 16 added tokens")->required();
  cmd->add_option("--out", o->out, "output folder (tokenizer.json, tokenizer_config.json)")->required();
  cmd->add_option("--min-frequency", o->min_frequency, "never merge a pair seen fewer times")->capture_default_str();
  cmd->add_option("--model-max-length", o->model_max_length, "model_max_length in tokenizer_config.json")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("files", o->files, "UTF-8 text files, each one document")->required();
  cmd->callback([o, &ctx] { run_train_tokenizer(*o, ctx.pool()); });
}

}  // namespace dsv3::app
