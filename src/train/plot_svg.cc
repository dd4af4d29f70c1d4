#include "train/plot_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "base/error.h"

namespace dsv3::train {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string tick_label(double v, double step) {
  if (std::fabs(v) >= 1e5 || (v != 0 && std::fabs(v) < 1e-3)) return fmt("%.3g", v);
  const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  // Multiples of step by index, so ticks do not drift as a running sum would.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) out.push_back(k * step + 0.0);  // + 0.0: no "-0" label
  return out;
}

std::string line_plot_svg(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                          const std::string& y_label, const std::string& empty_note) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  const double W = 800, H = 480, left = 70, right = 20, top = 50, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"480\" viewBox=\"0 0 800 480\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"800\" height=\"480\" fill=\"white\"/>\n";
  s += "<text x=\"400\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">" + escape(title) + "</text>\n";
  double x0 = HUGE_VAL, x1 = -HUGE_VAL, y0 = HUGE_VAL, y1 = -HUGE_VAL;
  for (const PlotSeries& c : series)
    for (const auto& [x, y] : c.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!(x1 >= x0)) {
    s += "<text x=\"400\" y=\"240\" text-anchor=\"middle\">" + escape(empty_note) + "</text>\n</svg>\n";
    return s;
  }
  x0 = std::min(x0, 0.0);
  if (x1 - x0 < 1e-9) x1 = x0 + 1;
  if (y1 - y0 < 1e-9) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  auto X = [&](double v) { return left + (v - x0) / (x1 - x0) * pw; };
  auto Y = [&](double v) { return top + (y1 - v) / (y1 - y0) * ph; };

  // Grid, ticks and labels.
  const std::vector<double> xt = nice_ticks(x0, x1, 8), yt = nice_ticks(y0, y1, 6);
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : xt) {
    const std::string x = fmt("%.1f", X(v));
    s += "<line x1=\"" + x + "\" y1=\"" + fmt("%.1f", top) + "\" x2=\"" + x + "\" y2=\"" + fmt("%.1f", top + ph) +
         "\" stroke=\"#e5e5e5\"/>\n";
    s += "<text x=\"" + x + "\" y=\"" + fmt("%.1f", top + ph + 18) + "\" text-anchor=\"middle\">" + tick_label(v, xstep) + "</text>\n";
  }
  for (double v : yt) {
    const std::string y = fmt("%.1f", Y(v));
    s += "<line x1=\"" + fmt("%.1f", left) + "\" y1=\"" + y + "\" x2=\"" + fmt("%.1f", left + pw) + "\" y2=\"" + y +
         "\" stroke=\"#e5e5e5\"/>\n";
    s += "<text x=\"" + fmt("%.1f", left - 8) + "\" y=\"" + y + "\" dy=\"4\" text-anchor=\"end\">" + tick_label(v, ystep) + "</text>\n";
  }
  s += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"" + fmt("%.1f", pw) + "\" height=\"" +
       fmt("%.1f", ph) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += "<text x=\"" + fmt("%.1f", left + pw / 2) + "\" y=\"" + fmt("%.1f", H - 15) + "\" text-anchor=\"middle\">" +
       escape(x_label) + "</text>\n";
  s += "<text transform=\"translate(18 " + fmt("%.1f", top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       escape(y_label) + "</text>\n";

  for (size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& c = series[i];
    const std::string color = kColors[i % 8];
    std::string p = "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"" +
                    fmt("%.1f", c.markers ? 2.0 : 1.2) + "\" points=\"";
    for (const auto& [x, y] : c.points)
      if (std::isfinite(x) && std::isfinite(y)) p += fmt("%.1f", X(x)) + "," + fmt("%.1f", Y(y)) + " ";
    s += p + "\"/>\n";
    if (c.markers)
      for (const auto& [x, y] : c.points)
        if (std::isfinite(x) && std::isfinite(y))
          s += "<circle cx=\"" + fmt("%.1f", X(x)) + "\" cy=\"" + fmt("%.1f", Y(y)) + "\" r=\"3\" fill=\"" + color + "\"/>\n";
  }
  // Legend, top right inside the plot.
  size_t widest = 0;
  for (const PlotSeries& c : series) widest = std::max(widest, c.label.size());
  const double lw = 46 + 6.5 * double(widest), lx = left + pw - lw + 4, ly = top + 12;
  s += "<rect x=\"" + fmt("%.1f", lx - 8) + "\" y=\"" + fmt("%.1f", ly - 10) + "\" width=\"" + fmt("%.1f", lw) +
       "\" height=\"" + fmt("%.1f", 20.0 * double(series.size()) + 4) + "\" fill=\"white\" stroke=\"#999\"/>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = ly + 20.0 * double(i);
    s += "<line x1=\"" + fmt("%.1f", lx) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + fmt("%.1f", lx + 24) + "\" y2=\"" +
         fmt("%.1f", y) + "\" stroke=\"" + kColors[i % 8] + "\" stroke-width=\"2\"/>\n";
    s += "<text x=\"" + fmt("%.1f", lx + 30) + "\" y=\"" + fmt("%.1f", y + 4) + "\">" + escape(series[i].label) + "</text>\n";
  }
  return s + "</svg>\n";
}

std::string loss_plot_svg(const LossCurves& c, const std::string& title) {
  std::vector<PlotSeries> series;
  auto add = [&](const std::vector<std::pair<int64_t, double>>& pts, const char* label, bool markers) {
    if (pts.empty()) return;
    PlotSeries p{label, {}, markers};
    for (const auto& [step, loss] : pts) p.points.emplace_back(double(step), loss);
    series.push_back(std::move(p));
  };
  add(c.train, "train loss", false);
  add(c.eval, "eval loss", true);
  return line_plot_svg(series, title, "step", "loss", "no losses logged");
}

void write_loss_plot(const std::string& path, const LossCurves& curves, const std::string& title) {
  write_svg(path, loss_plot_svg(curves, title));
}

void write_svg(const std::string& path, const std::string& svg) {
  std::ofstream out(path);
  out << svg;
  if (!out) fail("cannot write the plot '", path, "'");
}

}  // namespace dsv3::train
