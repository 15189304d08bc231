// Training curves on an RgbImage (curves_plot.h): "nice" 1-2-5 ticks on linear axes, decades on
// log axes, polylines broken at missing values, a legend box; text in our own bitmap font.
#include "train/run/curves_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/image/text_draw.h"
#include "tensor/check.h"

namespace sm {

namespace {

constexpr Rgb kPaper{255, 255, 255};
constexpr Rgb kInk{30, 30, 30};
constexpr Rgb kGrid{228, 228, 228};
constexpr Rgb kFaint{120, 120, 120};
constexpr int kMarginLeft = 62, kMarginRight = 12, kMarginTop = 30, kMarginBottom = 36;

// One axis: data range [lo, hi] (log10 of the values on a log axis) -> pixels [p0, p1].
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  int p0 = 0, p1 = 1;
  double unit_pixel(double t) const { return p0 + (t - lo) / (hi - lo) * (p1 - p0); }  // t in axis units
  double to_pixel(double v) const { return unit_pixel(log ? std::log10(v) : v); }      // v a data value
};

bool point_usable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

// Finite data range of the panel, in axis units; false when it has no usable point.
bool panel_range(const CurvePanel& p, double& x_lo, double& x_hi, double& y_lo, double& y_hi) {
  x_lo = y_lo = HUGE_VAL;
  x_hi = y_hi = -HUGE_VAL;
  for (const auto& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!point_usable(s.x[i], s.y[i], p.log_y)) continue;
      const double y = p.log_y ? std::log10(s.y[i]) : s.y[i];
      x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  return x_lo <= x_hi;
}

// Widens a degenerate range and adds a small margin so that curves do not sit on the frame.
void range_pad(double& lo, double& hi, double margin) {
  if (!(hi > lo)) {
    const double half = std::max(std::abs(lo) * 0.05, 0.5);
    lo -= half, hi += half;
  }
  const double m = (hi - lo) * margin;
  lo -= m, hi += m;
}

// Tick values in axis units: multiples of a 1-2-5 step (linear), or of 1 decade (log; at
// 1-2-5 within each decade when the range spans less than two decades).
std::vector<double> ticks_make(double lo, double hi, bool log, int wanted) {
  std::vector<double> out;
  if (log && hi - lo >= 2.0) {
    const double step = std::max(1.0, std::ceil((hi - lo) / wanted));
    for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push_back(t);
    return out;
  }
  if (log) {
    for (double d = std::floor(lo); d <= hi; d += 1.0)
      for (double m : {1.0, 2.0, 5.0}) {
        const double t = d + std::log10(m);
        if (t >= lo - 1e-9 && t <= hi + 1e-9) out.push_back(t);
      }
    return out;
  }
  const double raw = (hi - lo) / wanted, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = (raw / mag < 1.5 ? 1 : raw / mag < 3.5 ? 2 : raw / mag < 7.5 ? 5 : 10) * mag;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::abs(t) < step * 1e-6 ? 0.0 : t);  // no "-1.4e-17" for zero
  return out;
}

std::string tick_label(double t, bool log) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", log ? std::pow(10.0, t) : t);
  return buf;
}

void frame_and_ticks(RgbImage& c, const Axis& ax, const Axis& ay) {
  const int x0 = ax.p0, x1 = ax.p1, y0 = ay.p0, y1 = ay.p1;  // y0 is the bottom edge
  for (double t : ticks_make(ax.lo, ax.hi, false, std::max(2, (x1 - x0) / 80))) {
    const int px = int(std::lround(ax.unit_pixel(t)));
    overlay_line_draw(c, px, y1, px, y0, kGrid);
    overlay_line_draw(c, px, y0, px, y0 + 3, kInk);
    const std::string s = tick_label(t, false);
    overlay_text_draw(c, px - overlay_text_width(s, 1) / 2, y0 + 6, s, kInk, 1, false);
  }
  for (double t : ticks_make(ay.lo, ay.hi, ay.log, std::max(2, (y0 - y1) / 50))) {
    const int py = int(std::lround(ay.unit_pixel(t)));
    overlay_line_draw(c, x0, py, x1, py, kGrid);
    overlay_line_draw(c, x0 - 3, py, x0, py, kInk);
    const std::string s = tick_label(t, ay.log);
    overlay_text_draw(c, x0 - 6 - overlay_text_width(s, 1), py - kGlyphHeight / 2, s, kInk, 1, false);
  }
  overlay_line_draw(c, x0, y0, x1, y0, kInk);
  overlay_line_draw(c, x0, y1, x1, y1, kInk);
  overlay_line_draw(c, x0, y0, x0, y1, kInk);
  overlay_line_draw(c, x1, y0, x1, y1, kInk);
}

void series_draw(RgbImage& c, const CurveSeries& s, const Axis& ax, const Axis& ay) {
  bool have_prev = false;
  double px = 0, py = 0;
  const bool markers = s.x.size() <= 60;  // sparse series (per epoch) get a dot per point
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!point_usable(s.x[i], s.y[i], ay.log)) {
      have_prev = false;  // a gap in the data is a gap in the line
      continue;
    }
    const double qx = ax.to_pixel(s.x[i]), qy = ay.to_pixel(s.y[i]);
    if (have_prev) overlay_line_draw(c, px, py, qx, qy, s.colour);
    if (markers || !have_prev) overlay_point_draw(c, qx, qy, markers ? 2 : 1, s.colour);
    px = qx, py = qy, have_prev = true;
  }
}

// Legend in the top-right corner of the plot area: a short line of each colour and its name.
void legend_draw(RgbImage& c, const std::vector<CurveSeries>& series, int right, int top) {
  int text_w = 0;
  for (const auto& s : series) text_w = std::max(text_w, overlay_text_width(s.name, 1));
  if (series.empty() || text_w == 0) return;
  const int w = 14 + 4 + text_w + 8, h = int(series.size()) * 12 + 6;
  const int x = right - w - 4, y = top + 4;
  for (int yy = y; yy < y + h; ++yy)
    for (int xx = x; xx < x + w; ++xx) c.pixel_blend(xx, yy, kPaper, 0.85f);
  overlay_line_draw(c, x, y, x + w - 1, y, kFaint);
  overlay_line_draw(c, x, y + h - 1, x + w - 1, y + h - 1, kFaint);
  overlay_line_draw(c, x, y, x, y + h - 1, kFaint);
  overlay_line_draw(c, x + w - 1, y, x + w - 1, y + h - 1, kFaint);
  for (size_t i = 0; i < series.size(); ++i) {
    const int ly = y + 4 + int(i) * 12;
    for (int d = 0; d < 2; ++d) overlay_line_draw(c, x + 4, ly + 3 + d, x + 17, ly + 3 + d, series[i].colour);
    overlay_text_draw(c, x + 22, ly, series[i].name, kInk, 1, false);
  }
}

void panel_draw(RgbImage& c, const CurvePanel& p, int left, int w, int h) {
  const int tw = overlay_text_width(p.title, 1);
  overlay_text_draw(c, left + (w - tw) / 2, 5, p.title, kInk, 1, false);
  overlay_text_draw(c, left + kMarginLeft, kMarginTop - 11, p.y_label + (p.log_y ? " (log)" : ""), kFaint, 1, false);
  const int lw = overlay_text_width(p.x_label, 1);
  const int x0 = left + kMarginLeft, x1 = left + w - kMarginRight, y_top = kMarginTop, y_bottom = h - kMarginBottom;
  overlay_text_draw(c, (x0 + x1 - lw) / 2, h - 12, p.x_label, kFaint, 1, false);
  double x_lo, x_hi, y_lo, y_hi;
  if (!panel_range(p, x_lo, x_hi, y_lo, y_hi)) {
    for (int y : {y_top, y_bottom}) overlay_line_draw(c, x0, y, x1, y, kInk);
    for (int x : {x0, x1}) overlay_line_draw(c, x, y_top, x, y_bottom, kInk);
    overlay_text_draw(c, (x0 + x1 - overlay_text_width("no data", 1)) / 2, (y_top + y_bottom) / 2, "no data", kFaint, 1,
                      false);
    return;
  }
  range_pad(x_lo, x_hi, 0.0);
  range_pad(y_lo, y_hi, 0.05);
  const Axis ax{x_lo, x_hi, false, x0, x1}, ay{y_lo, y_hi, p.log_y, y_bottom, y_top};
  frame_and_ticks(c, ax, ay);
  for (const auto& s : p.series) series_draw(c, s, ax, ay);
  legend_draw(c, p.series, x1, y_top);
}

}  // namespace

RgbImage curves_plot(const std::vector<CurvePanel>& panels, int panel_width, int panel_height, const std::string& path) {
  SM_CHECK(!panels.empty(), path << ": no panels to plot");
  SM_CHECK(panel_width >= 160 && panel_width <= 4096 && panel_height >= 160 && panel_height <= 4096,
           path << ": panel size " << panel_width << "x" << panel_height << " outside 160..4096");
  for (const auto& p : panels)
    for (const auto& s : p.series)
      SM_CHECK(s.x.size() == s.y.size(), path << ": series '" << s.name << "' of panel '" << p.title << "' has "
                                              << s.x.size() << " x values and " << s.y.size() << " y values");
  RgbImage canvas(panel_width * int(panels.size()), panel_height, kPaper);
  for (size_t i = 0; i < panels.size(); ++i) panel_draw(canvas, panels[i], int(i) * panel_width, panel_width, panel_height);
  return canvas;
}

void curves_plot_png(const std::string& path, const std::vector<CurvePanel>& panels, int panel_width, int panel_height) {
  overlay_write_png(path, curves_plot(panels, panel_width, panel_height, path));
}

}  // namespace sm
