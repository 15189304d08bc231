// The self-contained evaluation report (see report_html.h): headline numbers, tables per angle,
// vertebra and landmark (step 1 vs step 1 + 2, method.md §3.2), SVG plots and embedded overlays.
#include "train/eval/report_html.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/image/image_io.h"
#include "models/pipeline/prediction_overlay.h"
#include "train/eval/svg_plots.h"

namespace sm {

namespace {

constexpr const char* kStep1Colour = "#e08a2c";
constexpr const char* kFinalColour = "#2c6fbb";
constexpr int kOverlaySide = 768;  // longest side of an embedded overlay, pixels

constexpr const char* kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1240px;
 padding:16px 24px 48px;color:#222;background:#fafafa;line-height:1.4}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 12px}
table{border-collapse:collapse;background:#fff;font-size:12px;margin:6px 0 12px}
.scroll{overflow-x:auto;max-width:100%}nav{font-size:13px;margin:0 0 8px}nav a{margin-right:12px;color:#2c6fbb}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;font-weight:600}td.n,th.n{text-align:left}
tr.s1 td{color:#8a5a1a;background:#fffaf3}tr.fin td{color:#1d3f6e}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.card .v{font-size:22px;font-weight:600}.card .k{font-size:12px;color:#666}
.plots{display:flex;flex-wrap:wrap;gap:10px}svg.plot{background:#fff;border:1px solid #ddd;border-radius:4px}
svg .pt{font-size:13px;font-weight:600}svg .pl{font-size:12px;fill:#444}svg .tk{font-size:10.5px;fill:#333}
svg .grid{stroke:#ececec;stroke-width:1}svg .box{fill:none;stroke:#999}
svg .ident{stroke:#777;stroke-width:1.2;stroke-dasharray:5 4}
svg .mline{stroke:#c0392b;stroke-width:1.5}svg .loa{stroke:#c0392b;stroke-width:1.2;stroke-dasharray:6 4}
.overlays{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px;width:min-content}
figure img{display:block}figcaption{font-size:12px;color:#444;min-width:240px;margin-top:4px}
.note{color:#666;font-size:13px}.legend{font-size:12px;color:#555}
)";

// Sets body[data-images-ok] = "loaded/total" once every embedded image has had its chance to
// decode; the report test reads it from the DOM that headless Chromium dumps.
constexpr const char* kScript = R"(
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; ++i) if (imgs[i].complete && imgs[i].naturalWidth > 0) ++ok;
  document.body.dataset.imagesOk = ok + '/' + imgs.length;
});
)";

std::string pct(double fraction) { return number_format(100.0 * fraction, 1) + " %"; }

bool report_has_mm(const MetricsReport& m) { return m.overall.mm.count > 0; }

// Headline table: one row per number, step 1 and step 1 + 2 side by side.
void headline_write(std::ostringstream& os, const EvalResult& r) {
  const MetricsReport &a = r.step1, &b = r.final;
  os << "<h2 id=\"headline\">Headline</h2><table><tr><th class=\"n\">metric</th><th>step 1</th><th>step 1 + 2</th></tr>";
  auto row = [&](const std::string& name, double x, double y, int digits) {
    os << "<tr><td class=\"n\">" << html_escape(name) << "</td><td>" << number_format(x, digits) << "</td><td><b>"
       << number_format(y, digits) << "</b></td></tr>";
  };
  row("median relative error x (% of width)", a.overall.rel_x.median, b.overall.rel_x.median, 2);
  row("median relative error y (% of height)", a.overall.rel_y.median, b.overall.rel_y.median, 2);
  row("median error (px)", a.overall.px.median, b.overall.px.median, 2);
  row("mean error (px)", a.overall.px.mean, b.overall.px.mean, 2);
  if (report_has_mm(b)) row("median error (mm)", a.overall.mm.median, b.overall.mm.median, 2);
  for (size_t k = 0; k < r.schema.angles.size() && k < a.per_angle.size() && k < b.per_angle.size(); ++k)
    row("median |error| " + r.schema.angles[k] + " (°)", a.per_angle[k].median_abs, b.per_angle[k].median_abs, 2);
  if (a.smape_percent || b.smape_percent)
    row("SMAPE (%)", a.smape_percent.value_or(NAN), b.smape_percent.value_or(NAN), 2);
  os << "</table>";
  const GrossMissStats& g = r.gross;
  auto card = [&](const std::string& value, const std::string& key) {
    os << "<div class=\"card\"><div class=\"v\">" << html_escape(value) << "</div><div class=\"k\">" << html_escape(key)
       << "</div></div>";
  };
  os << "<div class=\"cards\">";
  card(std::to_string(g.misses) + " / " + std::to_string(g.landmarks),
       "gross misses (error > width/3, step 1 + 2)" + (g.landmarks ? ": " + pct(double(g.misses) / g.landmarks) : ""));
  card(std::to_string(g.images_with_miss) + " / " + std::to_string(r.images.size()), "images with a gross miss");
  card(g.misses ? pct(double(g.misses_flagged) / g.misses) : "–",
       "flag catch rate (" + std::to_string(g.misses_flagged) + " of " + std::to_string(g.misses) + " misses flagged)");
  card(std::to_string(g.good_flagged), "flagged landmarks that were not misses");
  const QuadLevelStats& q = r.quad_levels;
  card(std::to_string(q.mixed) + " / " + std::to_string(q.quads),
       "mixed quadrilaterals (corners from two vertebrae), on " + std::to_string(q.images_mixed) + " images");
  card(std::to_string(q.off_level), "quadrilaterals on another level, on " + std::to_string(q.images_off_level) + " images");
  card(number_format(1000.0 * r.seconds_per_image, 1) + " ms", "pipeline time per image");
  os << "</div>";
  // The film-level verdict against the films' real errors (docs/pipeline.md, "Verdict").
  const VerdictStats& v = r.verdict;
  auto share = [](int a, int b) { return b ? pct(double(a) / b) : std::string("–"); };
  os << "<div class=\"cards\">";
  card(std::to_string(v.ok) + " / " + std::to_string(v.review) + " / " + std::to_string(v.rejected), "verdict: ok / review / rejected");
  card(share(v.with_miss_caught, v.with_miss), "films with a gross miss marked review or rejected (" +
                                                   std::to_string(v.with_miss_caught) + " of " + std::to_string(v.with_miss) + ")");
  card(share(v.without_miss_marked, v.without_miss), "false alarms: other films marked (" +
                                                         std::to_string(v.without_miss_marked) + " of " + std::to_string(v.without_miss) + ")");
  card(share(v.angle_off_caught, v.angle_off), "films with an angle off by > " + number_format(kVerdictAngleErrorDeg, 0) +
                                                   "° marked (" + std::to_string(v.angle_off_caught) + " of " + std::to_string(v.angle_off) + ")");
  card(share(v.angle_fine_marked, v.angle_fine), "films with every angle within " + number_format(kVerdictAngleErrorDeg, 0) +
                                                     "° marked (" + std::to_string(v.angle_fine_marked) + " of " + std::to_string(v.angle_fine) + ")");
  os << "</div>";
}

// Values of angle k over the images (NaN where an image lacks it).
std::vector<double> angle_column(const EvalResult& r, size_t k, int which) {
  std::vector<double> out;
  const size_t A = r.schema.angles.size();
  for (const EvalImage& im : r.images) {
    const std::vector<double>& v = which == 0 ? im.gt_angles : which == 1 ? im.pred.step1_angles : im.pred.angles;
    out.push_back(v.size() == A ? v[k] : NAN);
  }
  return out;
}

void angles_write(std::ostringstream& os, const EvalResult& r) {
  const size_t A = r.schema.angles.size();
  if (A == 0) return;
  os << "<h2 id=\"angles\">Angles</h2><table><tr><th class=\"n\">angle</th><th>n</th><th>median |err| step 1</th>"
        "<th>median |err| 1 + 2</th><th>mean |err| step 1</th><th>mean |err| 1 + 2</th><th>Pearson r step 1</th>"
        "<th>Pearson r 1 + 2</th></tr>";
  for (size_t k = 0; k < A && k < r.step1.per_angle.size() && k < r.final.per_angle.size(); ++k) {
    const AngleStats &a = r.step1.per_angle[k], &b = r.final.per_angle[k];
    os << "<tr><td class=\"n\">" << html_escape(r.schema.angles[k]) << "</td><td>" << b.count << "</td><td>"
       << number_format(a.median_abs, 2) << "</td><td>" << number_format(b.median_abs, 2) << "</td><td>"
       << number_format(a.mean_abs, 2) << "</td><td>" << number_format(b.mean_abs, 2) << "</td><td>"
       << number_format(a.pearson_r, 3) << "</td><td>" << number_format(b.pearson_r, 3) << "</td></tr>";
  }
  os << "</table><p class=\"legend\">Errors in degrees. Scatter: predicted against ground truth, dashed identity "
        "line. Bland–Altman (step 1 + 2): difference against mean, mean difference and ±1.96 SD limits.</p>";
  os << "<div class=\"plots\">";
  for (size_t k = 0; k < A; ++k) {
    const auto gt = angle_column(r, k, 0), s1 = angle_column(r, k, 1), fin = angle_column(r, k, 2);
    const std::string& name = r.schema.angles[k];
    os << svg_scatter_draw(name, "°", {{"step 1", kStep1Colour, gt, s1}, {"step 1 + 2", kFinalColour, gt, fin}});
    os << svg_bland_altman_draw(name + ": Bland–Altman", "°", gt, fin, kFinalColour);
  }
  os << "</div>";
}

// Rows "name / step 1" and "name / step 1 + 2"; one cell per error kind holding its median, mean
// and p90 (twelve separate columns did not fit the page).
void error_table_write(std::ostringstream& os, const std::string& first_column, const std::vector<std::string>& names,
                       const std::vector<ErrorStats>& s1, const std::vector<ErrorStats>& fin, bool mm) {
  std::vector<std::pair<std::string, Stats ErrorStats::*>> kinds = {
      {"px", &ErrorStats::px}, {"rel x (% width)", &ErrorStats::rel_x}, {"rel y (% height)", &ErrorStats::rel_y}};
  if (mm) kinds.push_back({"mm", &ErrorStats::mm});
  os << "<div class=\"scroll\"><table><tr><th class=\"n\">" << html_escape(first_column)
     << "</th><th class=\"n\">step</th><th>n</th>";
  for (const auto& k : kinds) os << "<th>" << html_escape(k.first) << "<br><small>median / mean / p90</small></th>";
  os << "</tr>";
  for (size_t i = 0; i < names.size() && i < s1.size() && i < fin.size(); ++i)
    for (int step = 0; step < 2; ++step) {
      const ErrorStats& e = step == 0 ? s1[i] : fin[i];
      os << "<tr class=\"" << (step == 0 ? "s1" : "fin") << "\"><td class=\"n\">" << (step == 0 ? html_escape(names[i]) : "")
         << "</td><td class=\"n\">" << (step == 0 ? "step 1" : "step 1 + 2") << "</td><td>" << e.px.count << "</td>";
      for (const auto& k : kinds) {
        const Stats& st = e.*(k.second);
        os << "<td><b>" << number_format(st.median, 2) << "</b> / " << number_format(st.mean, 2) << " / "
           << number_format(st.p90, 2) << "</td>";
      }
      os << "</tr>";
    }
  os << "</table></div>";
}

void vertebrae_write(std::ostringstream& os, const EvalResult& r) {
  std::vector<std::string> names;
  for (const auto& v : r.schema.vertebrae) names.push_back(v.name);
  LevelSeries a{"step 1 median", kStep1Colour, {}, {}}, b{"step 1 + 2 median", kFinalColour, {}, {}};
  for (size_t v = 0; v < names.size() && v < r.step1.per_vertebra.size() && v < r.final.per_vertebra.size(); ++v) {
    a.bars.push_back(r.step1.per_vertebra[v].px.median), a.line.push_back(r.step1.per_vertebra[v].px.mean);
    b.bars.push_back(r.final.per_vertebra[v].px.median), b.line.push_back(r.final.per_vertebra[v].px.mean);
  }
  os << "<h2 id=\"vertebrae\">Per vertebra</h2><div class=\"plots\">"
     << svg_level_chart_draw("Error per vertebra level", "Euclidean error (px)", "mean", names, {a, b}) << "</div>";
  error_table_write(os, "vertebra", names, r.step1.per_vertebra, r.final.per_vertebra, report_has_mm(r.final));
}

void landmarks_write(std::ostringstream& os, const EvalResult& r) {
  os << "<h2 id=\"landmarks\">Per landmark</h2>";
  error_table_write(os, "landmark", r.schema.landmarks, r.step1.per_landmark, r.final.per_landmark,
                    report_has_mm(r.final));
}

// One embedded overlay: the film with prediction (and ground truth) and the verdict's margin
// beside it, at most kOverlaySide px: the film gets what the margin leaves (the margin of a
// film below 700 px, which is what remains, uses the small font).
void overlay_figure_write(std::ostringstream& os, const EvalResult& r, size_t i, const std::string& label,
                          const EvalImageErrors& e) {
  const EvalImage& im = r.images[i];
  os << "<figure>";
  try {
    const Image film = image_read(im.image_path);
    const int film_side = kOverlaySide - prediction_overlay_margin_width(1, 1);
    const RgbImage canvas = prediction_overlay(film, r.schema, im.pred, &im.gt, film_side);
    const std::string png = png_encode(canvas.rgb.data(), canvas.width, canvas.height, 3, 8);
    os << "<img src=\"data:image/png;base64," << base64_encode(png) << "\" width=\"" << canvas.width << "\" height=\""
       << canvas.height << "\" alt=\"" << html_escape(label + ": " + im.name) << "\">";
  } catch (const std::exception& ex) {  // a report without one picture beats no report
    os << "<p class=\"note\">" << html_escape(im.name + ": no overlay (" + ex.what() + ")") << "</p>";
  }
  os << "<figcaption><b>" << html_escape(label) << "</b>: " << html_escape(im.name) << " — mean error "
     << number_format(e.mean_px_final, 2) << " px (step 1: " << number_format(e.mean_px_step1, 2)
     << " px), gross misses: " << e.gross_misses;
  if (!im.pred.flags.empty()) {
    std::string flags;
    for (const auto& f : im.pred.flags) flags += (flags.empty() ? "" : ", ") + f;
    os << "; flags: " << html_escape(flags);
  }
  os << "</figcaption></figure>";
}

void overlays_write(std::ostringstream& os, const EvalResult& r, const std::vector<EvalImageErrors>& errs) {
  std::vector<size_t> order;
  for (size_t i = 0; i < errs.size(); ++i)
    if (std::isfinite(errs[i].mean_px_final)) order.push_back(i);
  os << "<h2 id=\"overlays\">Best, median and worst image</h2>";
  if (order.empty()) {
    os << "<p class=\"note\">No image with a measurable error.</p>";
    return;
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return errs[a].mean_px_final < errs[b].mean_px_final; });
  // best, median, worst; one picture per distinct image, its labels joined
  const std::vector<std::pair<size_t, std::string>> wanted = {
      {order.front(), "best"}, {order[(order.size() - 1) / 2], "median"}, {order.back(), "worst"}};
  std::vector<std::pair<size_t, std::string>> picks;
  for (const auto& w : wanted) {
    auto it = std::find_if(picks.begin(), picks.end(), [&](const auto& p) { return p.first == w.first; });
    if (it == picks.end()) picks.push_back(w);
    else it->second += " = " + w.second;
  }
  os << "<p class=\"legend\">Ranked by mean landmark error (step 1 + 2). Green: ground truth.</p><div class=\"overlays\">";
  for (const auto& [i, label] : picks) overlay_figure_write(os, r, i, label, errs[i]);
  os << "</div>";
}

// Every image, worst first.
void images_write(std::ostringstream& os, const EvalResult& r, const std::vector<EvalImageErrors>& errs) {
  std::vector<size_t> order(errs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [&](size_t i) { return std::isfinite(errs[i].mean_px_final) ? errs[i].mean_px_final : INFINITY; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
  os << "<h2 id=\"images\">Images (worst first)</h2><div class=\"scroll\"><table><tr><th class=\"n\">image</th><th>mean px step 1</th>"
        "<th>mean px 1 + 2</th><th>gross misses</th><th>flags</th>";
  for (const auto& a : r.schema.angles) os << "<th>" << html_escape(a) << " err (°)</th>";
  os << "</tr>";
  for (size_t i : order) {
    const EvalImage& im = r.images[i];
    os << "<tr><td class=\"n\">" << html_escape(im.name) << "</td><td>" << number_format(errs[i].mean_px_step1, 2)
       << "</td><td>" << number_format(errs[i].mean_px_final, 2) << "</td><td>" << errs[i].gross_misses << "</td><td>"
       << im.pred.flags.size() << "</td>";
    for (double d : errs[i].angle_error_final) os << "<td>" << number_format(d, 2) << "</td>";
    os << "</tr>";
  }
  os << "</table></div><p class=\"legend\">Angle errors are signed: predicted − ground truth, step 1 + 2.</p>";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {  // 3 bytes -> 4 sextets
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  const size_t rest = bytes.size() - i;  // 1 or 2 bytes left: pad to 4 characters with '='
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string report_html_build(const EvalResult& r, const std::string& title) {
  std::vector<EvalImageErrors> errs;
  for (const EvalImage& im : r.images) errs.push_back(eval_image_errors(r.schema, im));
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>"
     << html_escape(title) << "</title><style>" << kCss << "</style></head><body>\n<h1>" << html_escape(title)
     << "</h1><p class=\"sub\">schema " << html_escape(r.schema.name) << " · " << r.images.size()
     << " images · 2-step DSNT: step 1 (detection + coarse) against step 1 + 2 (refinement)</p>\n"
     << "<nav><a href=\"#headline\">headline</a><a href=\"#angles\">angles</a><a href=\"#vertebrae\">vertebrae</a>"
        "<a href=\"#overlays\">overlays</a><a href=\"#landmarks\">landmarks</a><a href=\"#images\">images</a></nav>\n";
  if (!r.skipped.empty()) {  // said first: the numbers below do not cover these films
    os << "<h2 id=\"skipped\">Skipped: " << r.skipped.size()
       << " film(s) not evaluated</h2><table><tr><th class=\"n\">entry</th><th class=\"n\">reason</th></tr>";
    for (const EvalSkip& k : r.skipped)
      os << "<tr><td class=\"n\">" << html_escape(k.source) << "</td><td class=\"n\">" << html_escape(k.reason) << "</td></tr>";
    os << "</table>\n";
  }
  headline_write(os, r);
  angles_write(os, r);
  vertebrae_write(os, r);
  overlays_write(os, r, errs);
  landmarks_write(os, r);
  images_write(os, r, errs);
  os << "\n<script>" << kScript << "</script>\n</body></html>\n";
  return os.str();
}

}  // namespace sm
