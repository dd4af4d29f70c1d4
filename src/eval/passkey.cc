#include "eval/passkey.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "base/passkey_text.h"
#include "base/rng.h"

namespace dsv3::eval {
namespace {

using passkey_text::kIntro;
using passkey_text::kQuestion;
const char* kFiller = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

std::string with_filler(int64_t before, int64_t after, const std::string& needle) {
  std::string s = kIntro;
  for (int64_t i = 0; i < before; ++i) s += kFiller;
  s += needle;
  for (int64_t i = 0; i < after; ++i) s += kFiller;
  return s + kQuestion;
}

}  // namespace

std::string passkey_prompt(Backend& b, int64_t tokens, double depth, const std::string& key) {
  const std::string needle = passkey_text::needle(key);
  auto count = [&](int64_t n) {
    const int64_t before = int64_t(std::llround(depth * double(n)));
    return std::pair{int64_t(b.tokenize(with_filler(before, n - before, needle), true).size()), before};
  };
  // The most filler sentences that keep the prompt within `tokens` (binary search).
  int64_t lo = 0, hi = 1;
  while (count(hi).first <= tokens) hi *= 2;
  if (count(0).first > tokens) fail("a passkey prompt needs more than ", tokens, " tokens");
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (count(mid).first <= tokens ? lo : hi) = mid;
  }
  const int64_t before = count(lo).second;
  return with_filler(before, lo - before, needle);
}

PasskeyGrid run_passkey(Backend& b, const PasskeyOptions& o, const Progress& progress) {
  if (o.lengths.empty() || o.depths.empty() || o.trials < 1) fail("the passkey grid needs lengths, depths and trials");
  PasskeyGrid g{o.lengths, o.depths, {}};
  Rng rng(20261206);
  const int64_t total = int64_t(o.lengths.size() * o.depths.size()) * o.trials;
  int64_t done = 0;
  for (int64_t len : o.lengths) {
    if (len + 8 > b.context()) fail("passkey length ", len, " does not fit the context (", b.context(), " tokens)");
    std::vector<double> row;
    for (double depth : o.depths) {
      int64_t right = 0;
      for (int64_t t = 0; t < o.trials; ++t) {
        const std::string key = std::to_string(10000 + rng.next() % 90000);
        const std::string out = b.generate(passkey_prompt(b, len, depth, key), 8, {"\n"});
        right += out.find(key) != std::string::npos;
        if (progress) progress(++done, total);
      }
      row.push_back(double(right) / double(o.trials));
    }
    g.accuracy.push_back(row);
  }
  return g;
}

TaskResult passkey_result(const PasskeyGrid& g, double seconds) {
  TaskResult r;
  r.task = "passkey";
  r.file = "(generated)";
  double sum = 0;
  for (size_t i = 0; i < g.lengths.size(); ++i) {
    double s = 0;
    for (double a : g.accuracy[i]) s += a;
    sum += s;
    r.metrics.emplace_back("acc@" + std::to_string(g.lengths[i]), s / double(g.depths.size()));
  }
  r.metrics.insert(r.metrics.begin(), {"acc", sum / double(g.lengths.size() * g.depths.size())});
  r.items = int64_t(g.lengths.size() * g.depths.size());
  r.seconds = seconds;
  return r;
}

std::string passkey_heatmap_svg(const PasskeyGrid& g, const std::string& title) {
  const int cw = 64, ch = 36, left = 90, top = 50;
  const int w = left + cw * int(g.lengths.size()) + 20, h = top + ch * int(g.depths.size()) + 60;
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                "<text x=\"%d\" y=\"24\" font-size=\"15\">",
                w, h, left);
  s += buf;
  for (char c : title) s += c == '<' ? std::string("&lt;") : c == '&' ? std::string("&amp;") : std::string(1, c);
  s += "</text>\n";
  for (size_t j = 0; j < g.depths.size(); ++j) {
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">depth %.0f%%</text>\n", left - 8,
                  top + int(j) * ch + ch / 2 + 4, 100 * g.depths[j]);
    s += buf;
    for (size_t i = 0; i < g.lengths.size(); ++i) {
      const double a = g.accuracy[i][j];
      // red (0) to green (1)
      const int red = int(std::lround(220 * (1 - a) + 40 * a)), green = int(std::lround(60 * (1 - a) + 170 * a));
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,70)\" stroke=\"white\"/>"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"white\">%.0f%%</text>\n",
                    left + int(i) * cw, top + int(j) * ch, cw, ch, red, green, left + int(i) * cw + cw / 2,
                    top + int(j) * ch + ch / 2 + 4, 100 * a);
      s += buf;
    }
  }
  for (size_t i = 0; i < g.lengths.size(); ++i) {
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%lld</text>\n",
                  left + int(i) * cw + cw / 2, top + int(g.depths.size()) * ch + 18, (long long)g.lengths[i]);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">context length (tokens)</text>\n",
                left + cw * int(g.lengths.size()) / 2, top + int(g.depths.size()) * ch + 40);
  s += buf;
  return s + "</svg>\n";
}

}  // namespace dsv3::eval
