// Inline SVG charts of the evaluation report (see svg_plots.h): axes with 1-2-5 ticks, points,
// reference lines and bars written as plain SVG elements, sized for a two-column page.
#include "train/eval/svg_plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "train/eval/report_html.h"

namespace sm {

namespace {

constexpr double kHeight = 300, kLeft = 58, kRight = 16, kTop = 34, kBottom = 46;

std::string px(double v) {  // an SVG coordinate
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// A data range mapped to a pixel range (p0 at lo, p1 at hi).
struct Axis {
  double lo = 0, hi = 1, step = 0.2, p0 = 0, p1 = 1;
  double map(double v) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
};

// The range widened to multiples of a 1-2-5 step giving about `target` intervals, so that the
// tick labels are round numbers; a zero-width range is opened around its value.
Axis axis_fit(double lo, double hi, double p0, double p1, int target = 5) {
  if (!(hi - lo > 1e-9 * std::max(1.0, std::fabs(hi)))) {
    const double pad = std::max(1.0, std::fabs(lo) * 0.1);
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  Axis a;
  a.step = step;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  a.p0 = p0, a.p1 = p1;
  return a;
}

// Digits enough to tell ticks of this step apart.
int tick_digits(double step) { return std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6); }

void frame_open(std::ostringstream& os, double width, const std::string& title, const std::string& x_label,
                const std::string& y_label) {
  os << "<svg class=\"plot\" viewBox=\"0 0 " << px(width) << " " << px(kHeight) << "\" width=\"" << px(width)
     << "\" height=\"" << px(kHeight) << "\" role=\"img\" aria-label=\"" << html_escape(title) << "\">"
     << "<rect x=\"0\" y=\"0\" width=\"" << px(width) << "\" height=\"" << px(kHeight) << "\" fill=\"#fff\"/>"
     << "<text x=\"" << px(width / 2) << "\" y=\"20\" text-anchor=\"middle\" class=\"pt\">" << html_escape(title)
     << "</text>"
     << "<text x=\"" << px(kLeft + (width - kLeft - kRight) / 2) << "\" y=\"" << px(kHeight - 8)
     << "\" text-anchor=\"middle\" class=\"pl\">" << html_escape(x_label) << "</text>"
     << "<text transform=\"translate(14," << px(kTop + (kHeight - kTop - kBottom) / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" class=\"pl\">" << html_escape(y_label) << "</text>";
}

// Grid lines and tick labels; with x_ticks false the x axis is left to the caller (categories).
void axes_draw(std::ostringstream& os, const Axis& ax, const Axis& ay, bool x_ticks) {
  const int dy = tick_digits(ay.step), dx = tick_digits(ax.step);
  for (double v = ay.lo; v <= ay.hi + ay.step * 1e-6; v += ay.step) {
    const double y = ay.map(v);
    os << "<line x1=\"" << px(ax.p0) << "\" y1=\"" << px(y) << "\" x2=\"" << px(ax.p1) << "\" y2=\"" << px(y)
       << "\" class=\"grid\"/><text x=\"" << px(ax.p0 - 5) << "\" y=\"" << px(y + 4)
       << "\" text-anchor=\"end\" class=\"tk\">" << number_format(std::fabs(v) < ay.step * 1e-6 ? 0.0 : v, dy)
       << "</text>";
  }
  if (x_ticks)
    for (double v = ax.lo; v <= ax.hi + ax.step * 1e-6; v += ax.step) {
      const double x = ax.map(v);
      os << "<line x1=\"" << px(x) << "\" y1=\"" << px(ay.p0) << "\" x2=\"" << px(x) << "\" y2=\"" << px(ay.p1)
         << "\" class=\"grid\"/><text x=\"" << px(x) << "\" y=\"" << px(ay.p0 + 16)
         << "\" text-anchor=\"middle\" class=\"tk\">" << number_format(std::fabs(v) < ax.step * 1e-6 ? 0.0 : v, dx)
         << "</text>";
    }
  os << "<rect x=\"" << px(ax.p0) << "\" y=\"" << px(ay.p1) << "\" width=\"" << px(ax.p1 - ax.p0) << "\" height=\""
     << px(ay.p0 - ay.p1) << "\" class=\"box\"/>";
}

void no_data_draw(std::ostringstream& os, double width) {
  os << "<text x=\"" << px(width / 2) << "\" y=\"" << px(kHeight / 2) << "\" text-anchor=\"middle\" class=\"pl\">"
     << "no data</text></svg>";
}

// Legend entries stacked in the plot's top-left corner.
void legend_draw(std::ostringstream& os, double x, double y, const std::vector<std::pair<std::string, std::string>>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    const double yy = y + 15.0 * double(i);
    os << "<rect x=\"" << px(x) << "\" y=\"" << px(yy - 8) << "\" width=\"10\" height=\"10\" fill=\"" << items[i].second
       << "\"/><text x=\"" << px(x + 14) << "\" y=\"" << px(yy + 1) << "\" class=\"tk\">" << html_escape(items[i].first)
       << "</text>";
  }
}

// A horizontal reference line across the plot with its label. Labels sit where they cannot
// collide even when the lines coincide (zero SD): `place` 0 = above, left end; 1 = above, right
// end; -1 = below, right end.
void hline_draw(std::ostringstream& os, const Axis& ax, double y, const std::string& cls, const std::string& label,
                int place) {
  os << "<line x1=\"" << px(ax.p0) << "\" y1=\"" << px(y) << "\" x2=\"" << px(ax.p1) << "\" y2=\"" << px(y)
     << "\" class=\"" << cls << "\"/><text x=\"" << px(place == 0 ? ax.p0 + 3 : ax.p1 - 3) << "\" y=\""
     << px(place < 0 ? y + 12 : y - 3) << "\" text-anchor=\"" << (place == 0 ? "start" : "end") << "\" class=\"tk\">"
     << html_escape(label) << "</text>";
}

}  // namespace

std::string number_format(double value, int digits) {
  if (!std::isfinite(value)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

std::string svg_scatter_draw(const std::string& title, const std::string& unit, const std::vector<PlotSeries>& series) {
  const double width = 360;
  std::ostringstream os;
  frame_open(os, width, title, "ground truth (" + unit + ")", "predicted (" + unit + ")");
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        lo = std::min({lo, s.x[i], s.y[i]}), hi = std::max({hi, s.x[i], s.y[i]});
  if (!(lo <= hi)) {
    no_data_draw(os, width);
    return os.str();
  }
  // One range for both axes, so the identity line is the diagonal.
  const Axis ax = axis_fit(lo, hi, kLeft, width - kRight), ay = axis_fit(lo, hi, kHeight - kBottom, kTop);
  axes_draw(os, ax, ay, true);
  os << "<line x1=\"" << px(ax.map(ax.lo)) << "\" y1=\"" << px(ay.map(ax.lo)) << "\" x2=\"" << px(ax.map(ax.hi))
     << "\" y2=\"" << px(ay.map(ax.hi)) << "\" class=\"ident\"/>";
  std::vector<std::pair<std::string, std::string>> legend;
  for (const auto& s : series) {
    int n = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      os << "<circle cx=\"" << px(ax.map(s.x[i])) << "\" cy=\"" << px(ay.map(s.y[i])) << "\" r=\"3\" fill=\""
         << s.colour << "\" fill-opacity=\"0.65\"/>";
      ++n;
    }
    legend.push_back({s.label + " (n=" + std::to_string(n) + ")", s.colour});
  }
  legend_draw(os, ax.p0 + 8, ay.p1 + 14, legend);
  os << "</svg>";
  return os.str();
}

std::string svg_bland_altman_draw(const std::string& title, const std::string& unit, const std::vector<double>& gt,
                                  const std::vector<double>& pred, const std::string& colour) {
  const double width = 360;
  std::ostringstream os;
  frame_open(os, width, title, "mean of predicted and truth (" + unit + ")", "predicted − truth (" + unit + ")");
  std::vector<double> m, d;
  for (size_t i = 0; i < gt.size() && i < pred.size(); ++i)
    if (std::isfinite(gt[i]) && std::isfinite(pred[i])) m.push_back((gt[i] + pred[i]) / 2), d.push_back(pred[i] - gt[i]);
  if (m.empty()) {
    no_data_draw(os, width);
    return os.str();
  }
  double mean = 0, var = 0;
  for (double v : d) mean += v;
  mean /= double(d.size());
  for (double v : d) var += (v - mean) * (v - mean);
  const double sd = d.size() > 1 ? std::sqrt(var / double(d.size() - 1)) : NAN;
  double ylo = std::min(0.0, *std::min_element(d.begin(), d.end())), yhi = std::max(0.0, *std::max_element(d.begin(), d.end()));
  if (std::isfinite(sd)) ylo = std::min(ylo, mean - 1.96 * sd), yhi = std::max(yhi, mean + 1.96 * sd);
  const double room = 0.08 * (yhi - ylo);  // the line labels need space inside the frame
  ylo -= room, yhi += room;
  const Axis ax = axis_fit(*std::min_element(m.begin(), m.end()), *std::max_element(m.begin(), m.end()), kLeft, width - kRight);
  const Axis ay = axis_fit(ylo, yhi, kHeight - kBottom, kTop);
  axes_draw(os, ax, ay, true);
  hline_draw(os, ax, ay.map(mean), "mline", "mean " + number_format(mean, 2), 0);
  if (std::isfinite(sd)) {
    hline_draw(os, ax, ay.map(mean + 1.96 * sd), "loa", "+1.96 SD " + number_format(mean + 1.96 * sd, 2), 1);
    hline_draw(os, ax, ay.map(mean - 1.96 * sd), "loa", "−1.96 SD " + number_format(mean - 1.96 * sd, 2), -1);
  }
  for (size_t i = 0; i < m.size(); ++i)
    os << "<circle cx=\"" << px(ax.map(m[i])) << "\" cy=\"" << px(ay.map(d[i])) << "\" r=\"3\" fill=\"" << colour
       << "\" fill-opacity=\"0.65\"/>";
  os << "</svg>";
  return os.str();
}

std::string svg_level_chart_draw(const std::string& title, const std::string& y_label, const std::string& line_label,
                                 const std::vector<std::string>& categories, const std::vector<LevelSeries>& series) {
  const size_t n = categories.size();
  constexpr double kLegend = 130;  // legend column right of the plot, so it never covers a bar
  const double width = std::max(360.0, kLeft + kRight + 44.0 * double(n)) + kLegend;
  std::ostringstream os;
  frame_open(os, width, title, "vertebra", y_label);
  double hi = -INFINITY;
  for (const auto& s : series)
    for (const auto* v : {&s.bars, &s.line})
      for (double x : *v)
        if (std::isfinite(x)) hi = std::max(hi, x);
  if (n == 0 || !(hi >= 0)) {
    no_data_draw(os, width);
    return os.str();
  }
  const Axis ay = axis_fit(0.0, hi * 1.08, kHeight - kBottom, kTop);
  Axis ax;  // categories: band i spans [i, i + 1)
  ax.lo = 0, ax.hi = double(n), ax.step = 1, ax.p0 = kLeft, ax.p1 = width - kRight - kLegend;
  axes_draw(os, ax, ay, false);
  const double band = (ax.p1 - ax.p0) / double(n), bar = band * 0.7 / double(std::max<size_t>(1, series.size()));
  for (size_t c = 0; c < n; ++c)
    os << "<text x=\"" << px(ax.map(double(c) + 0.5)) << "\" y=\"" << px(ay.p0 + 16)
       << "\" text-anchor=\"middle\" class=\"tk\">" << html_escape(categories[c]) << "</text>";
  std::vector<std::pair<std::string, std::string>> legend;
  for (size_t k = 0; k < series.size(); ++k) {
    const LevelSeries& s = series[k];
    for (size_t c = 0; c < n && c < s.bars.size(); ++c) {
      if (!std::isfinite(s.bars[c])) continue;
      const double x = ax.map(double(c)) + band * 0.15 + bar * double(k), y = ay.map(s.bars[c]);
      os << "<rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(bar) << "\" height=\"" << px(ay.p0 - y)
         << "\" fill=\"" << s.colour << "\"><title>" << html_escape(categories[c] + " " + s.label + ": " +
                                                                    number_format(s.bars[c], 2)) << "</title></rect>";
    }
    std::string points;
    for (size_t c = 0; c < n && c < s.line.size(); ++c) {
      if (!std::isfinite(s.line[c])) continue;
      const double x = ax.map(double(c) + 0.5), y = ay.map(s.line[c]);
      points += px(x) + "," + px(y) + " ";
      os << "<circle cx=\"" << px(x) << "\" cy=\"" << px(y) << "\" r=\"3\" fill=\"" << s.colour << "\"/>";
    }
    if (!points.empty())
      os << "<polyline points=\"" << points << "\" fill=\"none\" stroke=\"" << s.colour
         << "\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>";
    legend.push_back({s.label, s.colour});
  }
  if (!line_label.empty()) legend.push_back({"dashed: " + line_label, "#999"});
  legend_draw(os, ax.p1 + 10, ay.p1 + 10, legend);
  os << "</svg>";
  return os.str();
}

}  // namespace sm
