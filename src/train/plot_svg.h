// Line plots as self-contained SVG, written by hand (no plotting library in Debian suits a
// C++ tool): series of (x, y) points, axes with round-number ticks, a legend and a title. The
// loss plot of every run (train loss per step, eval loss at its steps) is one of them;
// `dsv3 plot` draws any metric of several runs (docs/ablations.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "train/metrics_log.h"

namespace dsv3::train {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // non-finite points are skipped
  bool markers = false;                           // a dot at each point, thicker line
};

//! The SVG document; with no finite point it says `empty_note` instead.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                          const std::string& y_label, const std::string& empty_note = "nothing to plot");
//! Writes an SVG document to `path`; throws dsv3::Error if it cannot.
void write_svg(const std::string& path, const std::string& svg);

//! The loss plot. Empty curves give a plot that says there is nothing to show.
std::string loss_plot_svg(const LossCurves& curves, const std::string& title);
//! Writes loss_plot_svg to `path`; throws dsv3::Error if it cannot.
void write_loss_plot(const std::string& path, const LossCurves& curves, const std::string& title);

//! Round tick values covering [lo, hi] (about `target` of them, steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int target);

}  // namespace dsv3::train
