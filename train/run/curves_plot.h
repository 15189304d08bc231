// Training curves as a PNG: one or more panels side by side (e.g. train loss per step and
// validation error per epoch), each with axes, tick labels, a title and a legend, drawn with our
// font on an RgbImage. No plotting library needed.
#pragma once
#include <string>
#include <vector>

#include "models/image/overlay.h"

namespace sm {

struct CurveSeries {
  std::string name;
  std::vector<double> x, y;  // equal sizes; non-finite points (and y <= 0 on a log axis) are skipped
  Rgb colour{31, 119, 180};
};

struct CurvePanel {
  std::string title, x_label, y_label;
  bool log_y = false;
  std::vector<CurveSeries> series;
};

// The panels side by side on one canvas of (panels × panel_width) × panel_height pixels.
// A panel without finite points shows its frame and "no data". Requires at least one panel and
// sizes 160..4096; throws sm::Error naming `path` when a series' x and y sizes differ.
RgbImage curves_plot(const std::vector<CurvePanel>& panels, int panel_width = 480, int panel_height = 320,
                     const std::string& path = "curves");
// curves_plot written atomically as an 8-bit RGB PNG.
void curves_plot_png(const std::string& path, const std::vector<CurvePanel>& panels, int panel_width = 480,
                     int panel_height = 320);

}  // namespace sm
