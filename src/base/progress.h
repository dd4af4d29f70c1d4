// A one-line progress bar on stderr for long work (training steps, batch generation): redrawn
// in place on a terminal; elsewhere (logs, tests) about 20 plain lines in all.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace dsv3 {

//! "1h02m", "3m05s", "42s"; "?" for a negative or non-finite time.
inline std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(t / 3600), (long long)(t / 60 % 60));
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  else std::snprintf(buf, sizeof buf, "%llds", (long long)t);
  return buf;
}

class ProgressBar {
 public:
  //! `what`: the unit counted ("step", "answer").
  ProgressBar(bool on, int64_t total, std::string what = "step")
      : on_(on), tty_(isatty(STDERR_FILENO)), total_(total), what_(std::move(what)) {}
  //! `done` of total, then `figures` (e.g. "loss 3.21 | 800 tok/s | ETA 3m05s").
  void update(int64_t done, const std::string& figures) {
    if (!on_) return;
    const int64_t every = std::max<int64_t>(1, total_ / 20);
    if (!tty_ && done % every != 0 && done != total_) return;
    const int width = 24;
    const int fill = total_ > 0 ? int(double(width) * double(done) / double(total_)) : width;
    std::fprintf(stderr, "%s%s %lld/%lld [%.*s%*s] %s%s", tty_ ? "\r" : "", what_.c_str(), (long long)done,
                 (long long)total_, fill, "########################", width - fill, "", figures.c_str(),
                 tty_ ? "   " : "\n");
    std::fflush(stderr);
  }
  //! A line of its own above the bar.
  void note(const std::string& line) {
    if (!on_) return;
    std::fprintf(stderr, "%s%s\n", tty_ ? "\r\x1b[K" : "", line.c_str());
  }
  void finish() {
    if (on_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  bool on_, tty_;
  int64_t total_;
  std::string what_;
};

}  // namespace dsv3
