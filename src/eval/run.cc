#include "eval/run.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "base/error.h"
#include "eval/tasks.h"

namespace dsv3::eval {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string strip(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

constexpr size_t kBatch = 16;  // prompts per scoring request

}  // namespace

TaskResult run_perplexity(Backend& b, const std::string& path, const PerplexityOptions& o, const Progress& progress) {
  const auto t0 = Clock::now();
  const std::string text = read_text(path);
  const std::vector<int32_t> ids = b.tokenize(text, true);
  const int64_t n = int64_t(ids.size());
  const int64_t window = o.window > 0 ? o.window : std::min<int64_t>(b.context(), 4096);
  if (window > b.context()) fail("--window ", window, " is longer than a prompt may be (", b.context(), " tokens)");
  const int64_t stride = o.stride > 0 ? o.stride : window;
  if (window < 2) fail("--window must be at least 2 tokens");
  if (stride > window) fail("--stride ", stride, " is longer than the window ", window, ": tokens would go unscored");
  if (n < 2) fail(path, " has fewer than two tokens");
  // Windows [start, start + window); each scores the tokens from `from` on.
  struct Win {
    int64_t start, end, from;
  };
  std::vector<Win> wins;
  int64_t scored_to = 1;  // the first token has no context
  for (int64_t start = 0; scored_to < n; start += stride) {
    const int64_t end = std::min(n, start + window);
    wins.push_back({start, end, std::max(scored_to, start + 1)});
    scored_to = end;
    if (o.max_windows > 0 && int64_t(wins.size()) >= o.max_windows) break;
  }
  double nll = 0;
  int64_t tokens = 0;
  for (size_t w0 = 0; w0 < wins.size(); w0 += kBatch) {
    std::vector<std::vector<int32_t>> prompts;
    for (size_t w = w0; w < std::min(wins.size(), w0 + kBatch); ++w)
      prompts.emplace_back(ids.begin() + wins[w].start, ids.begin() + wins[w].end);
    const std::vector<std::vector<double>> lps = b.prompt_logprobs(prompts);
    for (size_t k = 0; k < prompts.size(); ++k) {
      const Win& w = wins[w0 + k];
      // lps[k][j] is the logprob of token start + j + 1.
      for (int64_t t = w.from; t < w.end; ++t) nll -= lps[k][size_t(t - w.start - 1)];
      tokens += w.end - w.from;
    }
    if (progress) progress(int64_t(std::min(wins.size(), w0 + kBatch)), int64_t(wins.size()));
  }
  TaskResult r;
  r.task = "perplexity";
  r.file = path;
  r.items = int64_t(wins.size());
  r.metrics = {{"tokens", double(tokens)}, {"loss", nll / double(tokens)}, {"perplexity", std::exp(nll / double(tokens))}};
  if (scored_to >= n) r.metrics.emplace_back("bits_per_byte", nll / std::log(2.0) / double(text.size()));
  r.seconds = since(t0);
  return r;
}

TaskResult run_choice(Backend& b, const std::string& path, const Progress& progress) {
  const auto t0 = Clock::now();
  const std::vector<ChoiceItem> items = load_choice_items(path);
  int64_t right = 0, right_norm = 0;
  // Questions in batches; every choice of a question is one prompt.
  for (size_t q0 = 0; q0 < items.size();) {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int64_t> ctx_len;
    size_t q1 = q0;
    for (; q1 < items.size() && prompts.size() < kBatch; ++q1) {
      const int64_t c = int64_t(b.tokenize(items[q1].context, true).size());
      for (const std::string& choice : items[q1].choices) {
        std::vector<int32_t> whole = b.tokenize(items[q1].context + choice, true);
        if (int64_t(whole.size()) <= c) fail(path, ": a choice of question ", q1 + 1, " adds no tokens to its context");
        prompts.push_back(std::move(whole));
        ctx_len.push_back(c);
      }
    }
    const std::vector<std::vector<double>> lps = b.prompt_logprobs(prompts);
    size_t p = 0;
    for (size_t q = q0; q < q1; ++q) {
      const ChoiceItem& it = items[q];
      int64_t best = 0, best_norm = 0;
      double best_ll = -INFINITY, best_ll_norm = -INFINITY;
      for (size_t k = 0; k < it.choices.size(); ++k, ++p) {
        double ll = 0;
        for (size_t t = size_t(ctx_len[p]); t < prompts[p].size(); ++t) ll += lps[p][t - 1];
        const double norm = ll / double(std::max<size_t>(it.choices[k].size(), 1));
        if (ll > best_ll) best_ll = ll, best = int64_t(k);
        if (norm > best_ll_norm) best_ll_norm = norm, best_norm = int64_t(k);
      }
      right += best == it.answer;
      right_norm += best_norm == it.answer;
    }
    q0 = q1;
    if (progress) progress(int64_t(q0), int64_t(items.size()));
  }
  TaskResult r;
  r.task = "choice";
  r.file = path;
  r.items = int64_t(items.size());
  r.metrics = {{"acc", double(right) / double(items.size())}, {"acc_norm", double(right_norm) / double(items.size())}};
  r.seconds = since(t0);
  return r;
}

TaskResult run_generation(Backend& b, const std::string& path, int64_t max_tokens, const Progress& progress) {
  const auto t0 = Clock::now();
  const std::vector<GenItem> items = load_gen_items(path);
  int64_t right = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const GenItem& it = items[i];
    const std::string out = b.generate(it.prompt, max_tokens, it.stop);
    bool ok = false;
    for (const std::string& t : it.targets) ok |= strip(out) == strip(t);
    if (!ok && !it.regex.empty()) {
      try {
        ok = std::regex_search(out, std::regex(it.regex));
      } catch (const std::regex_error& e) {
        fail(path, ": prompt ", i + 1, ": bad regex '", it.regex, "': ", e.what());
      }
    }
    right += ok;
    if (progress) progress(int64_t(i + 1), int64_t(items.size()));
  }
  TaskResult r;
  r.task = "generation";
  r.file = path;
  r.items = int64_t(items.size());
  r.metrics = {{"exact_match", double(right) / double(items.size())}};
  r.seconds = since(t0);
  return r;
}

}  // namespace dsv3::eval
