// `dsv3 plot`: one metric of one or more training runs as an SVG line plot (the trainer's own
// plotting, train/plot_svg.h), for comparing runs: the ablations of docs/ablations.md.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/error.h"
#include "train/metrics_log.h"
#include "train/plot_svg.h"

namespace dsv3::app {
namespace {

struct PlotArgs {
  std::vector<std::string> runs;
  std::string out, field = "loss", title, y_label;
  int64_t smooth = 1;
};

// The mean of each point and the smooth-1 before it (fewer at the start).
std::vector<std::pair<double, double>> moving_mean(const std::vector<std::pair<double, double>>& p, int64_t n) {
  if (n <= 1) return p;
  std::vector<std::pair<double, double>> out;
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    sum += p[i].second;
    if (i >= size_t(n)) sum -= p[i - size_t(n)].second;
    out.emplace_back(p[i].first, sum / double(std::min<size_t>(i + 1, size_t(n))));
  }
  return out;
}

void run_plot(const PlotArgs& a) {
  namespace fs = std::filesystem;
  std::vector<train::PlotSeries> series;
  for (const std::string& spec : a.runs) {
    // PATH[=LABEL]; PATH a metrics.jsonl or a run folder holding one.
    const size_t eq = spec.find('=');
    std::string path = spec.substr(0, eq);
    const std::string label = eq == std::string::npos ? path : spec.substr(eq + 1);
    if (fs::is_directory(path)) path = (fs::path(path) / "metrics.jsonl").string();
    train::PlotSeries s{label, moving_mean(train::read_metric(path, a.field), a.smooth), false};
    s.markers = s.points.size() <= 40;  // sparse series (evaluations): dots at the points
    series.push_back(std::move(s));
  }
  const std::string y = a.y_label.empty() ? a.field : a.y_label;
  const std::string title = a.title.empty() ? a.field + " by step" : a.title;
  train::write_svg(a.out, train::line_plot_svg(series, title, "step", y));
  std::printf("%s: %s of %zu run%s\n", a.out.c_str(), a.field.c_str(), series.size(), series.size() == 1 ? "" : "s");
}

}  // namespace

void add_plot(CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand("plot", "plot one metric of training runs (metrics.jsonl) as SVG");
  cmd->add_option("runs", a->runs, "RUN[=LABEL]: a run folder or its metrics.jsonl, and its legend label")
      ->required();
  cmd->add_option("--out,-o", a->out, "SVG file to write")->required();
  cmd->add_option("--field", a->field,
                  "metric: a number of the train or eval lines (loss, main_ce, mtp_ce, grad_norm, tokens_per_s, mfu, "
                  "eval_loss, eval_accuracy, eval_mtp_accuracy, ...), maxvio (mean over MoE layers) or maxvio[i]")
      ->capture_default_str();
  cmd->add_option("--smooth", a->smooth, "plot the mean of this many consecutive points")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--title", a->title, "plot title (default: the field)");
  cmd->add_option("--y-label", a->y_label, "y axis label (default: the field)");
  cmd->callback([a] { run_plot(*a); });
}

}  // namespace dsv3::app
