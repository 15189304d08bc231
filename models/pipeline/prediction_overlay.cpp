// The overlay picture of one prediction (prediction_overlay.h): film in gray, per-vertebra colour
// for corners, endplates and names, step-1 corners faintly; the verdict, angles and flags written
// with our font in a margin right of the film.
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
                   int dot, int text_scale, int film_width) {
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
  // The name right of the vertebra, or left of it when it would leave the film.
  const std::string& name = schema.vertebrae[size_t(v)].name;
  const int tw = overlay_text_width(name, text_scale), th = overlay_text_height(name, text_scale);
  int tx = int(std::lround(right)) + 4 * dot;
  if (tx + tw > film_width) {
    double left = 1e300;
    for (int i : schema.vertebra_landmarks(v))
      if (point_finite(r.landmarks[size_t(i)])) left = std::min(left, map(r.landmarks[size_t(i)])[0]);
    tx = int(std::lround(left)) - 4 * dot - tw;
  }
  overlay_text_draw(canvas, tx, int(std::lround(cy / n)) - th / 2, name, colour, text_scale);
}

constexpr Rgb kPanel{24, 24, 28};
constexpr int kMarginChars = 34;  // characters per line of the margin

int text_scale_for(int canvas_width, int canvas_height) { return std::max(canvas_width, canvas_height) >= 700 ? 2 : 1; }

// `text` cut into lines of at most max_chars, breaking at spaces (or inside a word longer than a
// line), each continuation indented by two spaces.
std::vector<std::string> text_wrap(std::string text, size_t max_chars) {
  std::vector<std::string> lines;
  while (true) {
    const std::string indent = lines.empty() ? "" : "  ";
    const size_t room = max_chars - indent.size();
    if (text.size() <= room) {
      lines.push_back(indent + text);
      return lines;
    }
    // The last space that leaves more than a list bullet ("- ") on the line.
    size_t cut = text.rfind(' ', room);
    const bool at_space = cut != std::string::npos && cut > 2;
    if (!at_space) cut = room;
    lines.push_back(indent + text.substr(0, cut));
    text = text.substr(at_space ? cut + 1 : cut);
  }
}

// Flags and reasons are "<kind>:<what>"; a film often has one kind for many landmarks. Grouped
// per kind, in order of first appearance, as "<kind>: what1; what2": one short entry per kind
// instead of a screen of repeats ("refine_far_from_step1" for each corner of a vertebra).
std::vector<std::string> flags_grouped(const std::vector<std::string>& flags) {
  std::vector<std::pair<std::string, std::string>> groups;  // kind -> whats joined
  for (const std::string& f : flags) {
    const size_t colon = f.find(':');
    const std::string kind = colon == std::string::npos ? f : f.substr(0, colon);
    const std::string what = colon == std::string::npos ? "" : f.substr(colon + 1);
    auto it = std::find_if(groups.begin(), groups.end(), [&kind](const auto& g) { return g.first == kind; });
    if (it == groups.end()) groups.push_back({kind, what});
    else if (!what.empty()) it->second += (it->second.empty() ? "" : "; ") + what;
  }
  std::vector<std::string> out;
  for (const auto& [kind, whats] : groups) out.push_back(whats.empty() ? kind : kind + ": " + whats);
  return out;
}

// One coloured block of the margin: its lines and colour.
struct MarginBlock {
  std::vector<std::string> lines;
  Rgb colour;
};

// The margin's text, top to bottom: the verdict and its reasons, the angles (step 1 value after
// it; "not used" for a rejected film), then the flags.
std::vector<MarginBlock> margin_blocks(const Schema& schema, const PipelineResult& r) {
  const size_t w = kMarginChars;
  const Rgb status_colour = r.status == "ok" ? kGreen : r.status == "review" ? kYellow : kRed;
  std::vector<MarginBlock> blocks;
  MarginBlock verdict{{"status: " + r.status}, status_colour};
  for (const std::string& reason : flags_grouped(r.status_reasons))
    for (const std::string& l : text_wrap("- " + reason, w)) verdict.lines.push_back(l);
  blocks.push_back(verdict);
  MarginBlock angles{{""}, kWhite};
  for (size_t k = 0; k < schema.angles.size() && k < r.angles.size(); ++k) {
    char value[64];
    if (r.status == "rejected") std::snprintf(value, sizeof(value), "not used");
    else if (std::isfinite(r.angles[k])) std::snprintf(value, sizeof(value), "%.1f deg", r.angles[k]);
    else std::snprintf(value, sizeof(value), "n/a");
    for (const std::string& l : text_wrap(schema.angles[k] + " " + value, w)) angles.lines.push_back(l);
  }
  blocks.push_back(angles);
  // The flags that are not already listed as reasons (all of them for a rejected film).
  MarginBlock flags{{}, kRed};
  std::vector<std::string> others;
  for (const std::string& f : r.flags)
    if (std::find(r.status_reasons.begin(), r.status_reasons.end(), f) == r.status_reasons.end()) others.push_back(f);
  for (const std::string& f : flags_grouped(others))
    for (const std::string& l : text_wrap("- " + f, w)) flags.lines.push_back(l);
  if (!flags.lines.empty()) {
    flags.lines.insert(flags.lines.begin(), {"", "flags:"});
    blocks.push_back(flags);
  }
  return blocks;
}

// The margin right of the film: the blocks written top-down in their colours; what does not fit
// in the canvas height ends with "(+N more lines)".
void margin_draw(RgbImage& canvas, int x0, const Schema& schema, const PipelineResult& r, int text_scale) {
  for (int y = 0; y < canvas.height; ++y)
    for (int x = x0; x < canvas.width; ++x) canvas.pixel_set(x, y, kPanel);
  const int line_h = kLineAdvance * text_scale, pad = 3 * text_scale;
  const int max_lines = std::max(1, (canvas.height - 2 * pad) / line_h);
  int line = 0, total = 0;
  const auto blocks = margin_blocks(schema, r);
  for (const auto& b : blocks) total += int(b.lines.size());
  for (const auto& b : blocks)
    for (const std::string& l : b.lines) {
      if (line == max_lines - 1 && total > max_lines) {
        overlay_text_draw(canvas, x0 + pad, pad + line * line_h, "(+" + std::to_string(total - line) + " more lines)",
                          kWhite, text_scale);
        return;
      }
      overlay_text_draw(canvas, x0 + pad, pad + line * line_h, l, b.colour, text_scale);
      ++line;
    }
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
  const RgbImage picture = canvas_from_film(film, max_side, map);
  const int film_width = picture.width;
  const int text_scale = text_scale_for(picture.width, picture.height), dot = text_scale == 2 ? 3 : 2;
  // The film on the left, the margin with the verdict, angles and flags beside it: no text is
  // ever written over the anatomy.
  RgbImage canvas(film_width + prediction_overlay_margin_width(picture.width, picture.height), picture.height, kPanel);
  for (int y = 0; y < picture.height; ++y)
    std::copy(picture.rgb.begin() + 3 * size_t(y) * size_t(film_width), picture.rgb.begin() + 3 * size_t(y + 1) * size_t(film_width),
              canvas.rgb.begin() + 3 * size_t(y) * size_t(canvas.width));

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
  for (int v = 0; v < schema.vertebra_count(); ++v) vertebra_draw(canvas, map, schema, result, v, dot, text_scale, film_width);
  if (gt && gt->points.size() == l)
    for (const Point2& p : gt->points) {
      const Point2 q = map(p);
      overlay_point_draw(canvas, q[0], q[1], std::max(1, dot - 1), kGreen);
    }
  if (result.landmark_flagged.size() == l)
    for (size_t i = 0; i < l; ++i)
      if (result.landmark_flagged[i] && point_finite(result.landmarks[i]))
        ring_draw(canvas, map(result.landmarks[i]), 3 * dot + 1, kRed);
  margin_draw(canvas, film_width, schema, result, text_scale);
  return canvas;
}

int prediction_overlay_margin_width(int film_canvas_width, int film_canvas_height) {
  const int scale = text_scale_for(film_canvas_width, film_canvas_height);
  return (kMarginChars * kGlyphAdvance + 6) * scale;
}

}  // namespace sm
