// The overlay picture of one prediction (prediction_overlay.h): film in gray, per-vertebra colour
// for corners, endplates and names, step-1 corners faintly, angles and flags written with our font.
#include "models/pipeline/prediction_overlay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "models/geometry/letterbox.h"
#include "models/image/text_draw.h"
#include "tensor/check.h"

namespace sm {

namespace {

constexpr Rgb kRed{230, 30, 30};
constexpr Rgb kGreen{40, 220, 60};
constexpr Rgb kWhite{240, 240, 240};
constexpr Rgb kYellow{250, 220, 60};

// Colours that stay apart from each other and from the ground truth's green and the flags' red.
Rgb vertebra_colour(int v) {
  static const Rgb palette[] = {{0, 190, 255}, {255, 150, 0}, {200, 90, 255}, {255, 240, 0},
                                {0, 235, 200}, {255, 100, 200}, {120, 160, 255}, {200, 200, 120}};
  return palette[size_t(v) % (sizeof(palette) / sizeof(palette[0]))];
}

bool point_finite(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }

// Film pixels -> canvas pixels: the same letterbox mapping that produced the canvas.
struct CanvasMap {
  Letterbox lb;
  Point2 operator()(const Point2& p) const { return letterbox_forward(lb, p); }
};

// The film scaled (area averaging) so that its longer side is at most max_side, in gray with the
// 1st..99th percentile window.
RgbImage canvas_from_film(const Image& film, int max_side, CanvasMap& map) {
  const double s = std::min(1.0, double(max_side) / double(std::max(film.width, film.height)));
  const int w = std::max(1, int(std::lround(film.width * s))), h = std::max(1, int(std::lround(film.height * s)));
  map.lb = letterbox_fit(film.width, film.height, w, h);
  if (w == film.width && h == film.height) return overlay_from_gray(film);
  // Rounding may leave a fraction of a pixel of padding on one axis: pad with the film's mean.
  const double mean = std::accumulate(film.data.begin(), film.data.end(), 0.0) / double(film.data.size());
  return overlay_from_gray(letterbox_image(film, map.lb, float(mean)));
}

// A red circle of the given radius, two pixels thick.
void ring_draw(RgbImage& canvas, const Point2& c, int radius, Rgb colour) {
  const int cx = int(std::lround(c[0])), cy = int(std::lround(c[1]));
  for (int dy = -radius - 1; dy <= radius + 1; ++dy)
    for (int dx = -radius - 1; dx <= radius + 1; ++dx) {
      const double d = std::sqrt(double(dx * dx + dy * dy));
      if (d >= radius - 1.0 && d <= radius + 0.7) canvas.pixel_set(cx + dx, cy + dy, colour);
    }
}

// One vertebra: endplate lines, corners, the name to the side of its corners.
void vertebra_draw(RgbImage& canvas, const CanvasMap& map, const Schema& schema, const PipelineResult& r, int v,
                   int dot, int text_scale) {
  const Rgb colour = vertebra_colour(v);
  for (const SegmentSpec& seg : schema.endplates) {
    const auto ends = schema.segment_landmarks(v, seg);
    if (ends[0] < 0 || ends[1] < 0) continue;
    const Point2 a = map(r.landmarks[size_t(ends[0])]), b = map(r.landmarks[size_t(ends[1])]);
    overlay_line_draw(canvas, a[0], a[1], b[0], b[1], colour);
  }
  double right = -1e300, cy = 0;
  int n = 0;
  for (int i : schema.vertebra_landmarks(v)) {
    const Point2 p = map(r.landmarks[size_t(i)]);
    if (!point_finite(p)) continue;
    overlay_point_draw(canvas, p[0], p[1], dot, colour);
    right = std::max(right, p[0]);
    cy += p[1];
    ++n;
  }
  if (n == 0) return;
  // The name right of the vertebra, or left of it when it would leave the canvas.
  const std::string& name = schema.vertebrae[size_t(v)].name;
  const int tw = overlay_text_width(name, text_scale), th = overlay_text_height(name, text_scale);
  int tx = int(std::lround(right)) + 4 * dot;
  if (tx + tw > canvas.width) {
    double left = 1e300;
    for (int i : schema.vertebra_landmarks(v))
      if (point_finite(r.landmarks[size_t(i)])) left = std::min(left, map(r.landmarks[size_t(i)])[0]);
    tx = int(std::lround(left)) - 4 * dot - tw;
  }
  overlay_text_draw(canvas, tx, int(std::lround(cy / n)) - th / 2, name, colour, text_scale);
}

// "L1_L5_lordosis 52.3 deg" lines in the top-left corner (step 1 value in brackets).
void angles_draw(RgbImage& canvas, const Schema& schema, const PipelineResult& r, int text_scale) {
  std::string text;
  for (size_t k = 0; k < schema.angles.size() && k < r.angles.size(); ++k) {
    char value[64];
    if (std::isfinite(r.angles[k]))
      std::snprintf(value, sizeof(value), "%.1f deg", r.angles[k]);
    else
      std::snprintf(value, sizeof(value), "n/a");
    text += (text.empty() ? "" : "\n") + schema.angles[k] + " " + value;
  }
  overlay_text_draw(canvas, 2 * text_scale, 2 * text_scale, text, kWhite, text_scale);
}

// "flags: a b ..." wrapped to the canvas width, written upwards from the bottom edge, in at most a
// quarter of the canvas height (then "(+N more)") so that the film stays visible.
void flags_draw(RgbImage& canvas, const std::vector<std::string>& flags, int text_scale) {
  if (flags.empty()) return;
  const int max_chars = std::max(8, (canvas.width - 4 * text_scale) / (kGlyphAdvance * text_scale));
  const size_t max_lines = size_t(std::max(1, canvas.height / 4 / (kLineAdvance * text_scale)));
  std::vector<std::string> lines{"flags:"};
  size_t shown = 0;
  for (; shown < flags.size(); ++shown) {
    const std::string piece = " " + flags[shown];
    if (int(lines.back().size() + piece.size()) > max_chars) {
      if (lines.size() == max_lines) break;
      lines.emplace_back();
    }
    lines.back() += lines.back().empty() ? flags[shown] : piece;
  }
  if (shown < flags.size()) lines.back() += " (+" + std::to_string(flags.size() - shown) + " more)";
  std::string text;
  for (const auto& l : lines) text += (text.empty() ? "" : "\n") + l;
  const int h = overlay_text_height(text, text_scale);
  overlay_text_draw(canvas, 2 * text_scale, canvas.height - h - 2 * text_scale, text, kRed, text_scale);
}

}  // namespace

RgbImage prediction_overlay(const Image& film, const Schema& schema, const PipelineResult& result,
                            const Annotation* gt, int max_side) {
  SM_CHECK(!film.empty(), "prediction_overlay: empty film");
  SM_CHECK(max_side >= 16, "prediction_overlay: max_side " << max_side << " below 16");
  const size_t l = size_t(schema.landmark_count());
  SM_CHECK(result.landmarks.size() == l, "prediction_overlay: result holds " << result.landmarks.size()
                                                                             << " landmarks, schema '" << schema.name
                                                                             << "' has " << l);
  CanvasMap map;
  RgbImage canvas = canvas_from_film(film, max_side, map);
  const int side = std::max(canvas.width, canvas.height);
  const int text_scale = side >= 700 ? 2 : 1, dot = side >= 700 ? 3 : 2;

  if (result.step1.size() == l)
    for (const Point2& p : result.step1) {
      const Point2 q = map(p);
      if (!point_finite(q)) continue;
      const int x = int(std::lround(q[0])), y = int(std::lround(q[1]));
      for (int d = -dot; d <= dot; ++d) {  // a small faint diagonal cross
        canvas.pixel_blend(x + d, y + d, kYellow, 0.5f);
        canvas.pixel_blend(x + d, y - d, kYellow, 0.5f);
      }
    }
  for (int v = 0; v < schema.vertebra_count(); ++v) vertebra_draw(canvas, map, schema, result, v, dot, text_scale);
  if (gt && gt->points.size() == l)
    for (const Point2& p : gt->points) {
      const Point2 q = map(p);
      overlay_point_draw(canvas, q[0], q[1], std::max(1, dot - 1), kGreen);
    }
  if (result.landmark_flagged.size() == l)
    for (size_t i = 0; i < l; ++i)
      if (result.landmark_flagged[i] && point_finite(result.landmarks[i]))
        ring_draw(canvas, map(result.landmarks[i]), 3 * dot + 1, kRed);
  angles_draw(canvas, schema, result, text_scale);
  flags_draw(canvas, result.flags, text_scale);
  return canvas;
}

}  // namespace sm
