// A loss plot as a self-contained SVG, written by hand (no plotting library): train loss
// per step, eval loss at its steps, axes with round-number ticks, a legend and a title.
#pragma once

#include <string>

#include "train/metrics_log.h"

namespace dsv3::train {

//! The SVG document. Empty curves give a plot that says there is nothing to show.
std::string loss_plot_svg(const LossCurves& curves, const std::string& title);
//! Writes loss_plot_svg to `path`; throws dsv3::Error if it cannot.
void write_loss_plot(const std::string& path, const LossCurves& curves, const std::string& title);

//! Round tick values covering [lo, hi] (about `target` of them, steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int target);

}  // namespace dsv3::train
