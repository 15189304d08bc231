// Inline SVG charts for the evaluation report (report_html.cpp), drawn from plain numbers by our
// own code: predicted-vs-truth scatter, Bland–Altman plot, and a per-level chart of two series.
#pragma once
#include <string>
#include <vector>

namespace sm {

// One set of points (scatter) or values per category (level chart); `colour` is a CSS colour.
struct PlotSeries {
  std::string label;
  std::string colour;
  std::vector<double> x, y;  // scatter: pairs (non-finite pairs are skipped); level chart: y only
};

// Predicted (y) against ground truth (x), both axes over one range, with the identity line.
std::string svg_scatter_draw(const std::string& title, const std::string& unit, const std::vector<PlotSeries>& series);

// Bland–Altman: difference pred − gt against the mean of the two, with the mean difference and
// the limits of agreement mean ± 1.96 SD (sample SD) as lines. gt and pred have equal sizes.
std::string svg_bland_altman_draw(const std::string& title, const std::string& unit, const std::vector<double>& gt,
                                  const std::vector<double>& pred, const std::string& colour);

// Grouped bars (one bar per series per category, value = bars.y) and, when a series has
// line.y, the same categories joined by a dashed line with dots (e.g. median as bars, p90 as lines).
struct LevelSeries {
  std::string label, colour;
  std::vector<double> bars, line;  // one value per category (NaN: none)
};
std::string svg_level_chart_draw(const std::string& title, const std::string& y_label, const std::string& line_label,
                                 const std::vector<std::string>& categories, const std::vector<LevelSeries>& series);

// "1.25" style: fixed digits, "–" for a non-finite value (for tables and labels).
std::string number_format(double value, int digits);

}  // namespace sm
