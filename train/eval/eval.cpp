// Evaluation metrics and output files (see eval.h; method.md §3.2): step 1 and step 1 + 2 through
// metrics_compute side by side, gross misses against the quality flags, metrics.json, per-image
// prediction files and the HTML report. eval_run (running the pipeline) is in eval_run.cpp.
#include "train/eval/eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "models/pipeline/prediction_json.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "train/eval/report_html.h"

namespace sm {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool finite2(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }

nlohmann::json num_json(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

double mean_px(const Schema& schema, const EvalImage& im, const std::vector<Point2>& pred) {
  if (pred.size() != im.gt.points.size()) return kNaN;
  const auto errs = landmark_errors(schema, im.gt.points, im.gt.visible, pred, std::nullopt);
  double sum = 0;
  int n = 0;
  for (const auto& e : errs)
    if (std::isfinite(e.px)) sum += e.px, ++n;
  return n ? sum / n : kNaN;
}

std::vector<double> angle_errors(const std::vector<double>& gt, const std::vector<double>& pred, size_t count) {
  std::vector<double> out(count, kNaN);
  if (gt.size() != count || pred.size() != count) return out;
  for (size_t k = 0; k < count; ++k) out[k] = pred[k] - gt[k];  // NaN propagates
  return out;
}

MetricsSample sample_make(const EvalImage& im, const std::vector<Point2>& pred, const std::vector<double>& pred_angles,
                          size_t angle_count) {
  MetricsSample s;
  s.gt = im.gt.points;
  s.pred = pred;
  s.visible = im.gt.visible;
  s.pixel_spacing_mm = im.gt.pixel_spacing_mm;
  // metrics_compute wants both angle lists complete or both empty.
  if (im.gt_angles.size() == angle_count && pred_angles.size() == angle_count) {
    s.gt_angles = im.gt_angles;
    s.pred_angles = pred_angles;
  }
  return s;
}

nlohmann::json gross_json(const GrossMissStats& g) {
  const int flagged = g.misses_flagged + g.good_flagged;
  return {{"landmarks", g.landmarks},
          {"misses", g.misses},
          {"miss_rate", g.landmarks ? num_json(double(g.misses) / g.landmarks) : nlohmann::json(nullptr)},
          {"images_with_miss", g.images_with_miss},
          {"misses_flagged", g.misses_flagged},
          {"good_flagged", g.good_flagged},
          // share of the misses that a flag caught, and share of the flags that point at a miss
          {"flag_catch_rate", g.misses ? num_json(double(g.misses_flagged) / g.misses) : nlohmann::json(nullptr)},
          {"flag_precision", flagged ? num_json(double(g.misses_flagged) / flagged) : nlohmann::json(nullptr)}};
}

// Counts and rates of the verdict against the films' real errors (null where a group is empty).
nlohmann::json verdict_json(const VerdictStats& v) {
  auto rate = [](int a, int b) { return b ? num_json(double(a) / b) : nlohmann::json(nullptr); };
  return {{"ok", v.ok}, {"review", v.review}, {"rejected", v.rejected},
          {"films_with_gross_miss", v.with_miss}, {"gross_miss_films_caught", v.with_miss_caught},
          {"gross_miss_catch_rate", rate(v.with_miss_caught, v.with_miss)},
          {"films_without_gross_miss", v.without_miss}, {"films_without_gross_miss_marked", v.without_miss_marked},
          {"gross_miss_false_alarm_rate", rate(v.without_miss_marked, v.without_miss)},
          {"angle_error_threshold_deg", kVerdictAngleErrorDeg},
          {"films_with_angle_error", v.angle_off}, {"angle_error_films_caught", v.angle_off_caught},
          {"angle_error_catch_rate", rate(v.angle_off_caught, v.angle_off)},
          {"films_without_angle_error", v.angle_fine}, {"films_without_angle_error_marked", v.angle_fine_marked},
          {"angle_error_false_alarm_rate", rate(v.angle_fine_marked, v.angle_fine)}};
}

// One film into the verdict's tally: its status against its gross misses and its largest
// angle error. An angle the ground truth does not define is left out; one the prediction cannot
// give (or a rejected film's) counts as off.
void verdict_count(VerdictStats& v, const Schema& s, const EvalImage& im, int gross_misses) {
  const std::string& status = im.pred.status;
  const bool marked = status == "review" || status == "rejected";
  v.ok += status == "ok", v.review += status == "review", v.rejected += status == "rejected";
  if (gross_misses > 0) v.with_miss++, v.with_miss_caught += marked;
  else v.without_miss++, v.without_miss_marked += marked;
  bool off = false, any = false;
  for (size_t k = 0; k < s.angles.size() && k < im.gt_angles.size(); ++k) {
    if (!std::isfinite(im.gt_angles[k])) continue;
    any = true;
    const double pred = k < im.pred.angles.size() ? im.pred.angles[k] : NAN;
    off = off || !(std::fabs(pred - im.gt_angles[k]) <= kVerdictAngleErrorDeg);
  }
  if (!any) return;
  if (off) v.angle_off++, v.angle_off_caught += marked;
  else v.angle_fine++, v.angle_fine_marked += marked;
}

}  // namespace

std::vector<int> eval_gross_misses(const Schema& schema, const EvalImage& im) {
  const size_t L = size_t(schema.landmark_count());
  SM_CHECK(im.gt.points.size() == L, "eval: '" << im.name << "': ground truth has " << im.gt.points.size()
                                               << " landmarks, schema '" << schema.name << "' " << L);
  std::vector<int> out(L, -1);
  for (int v = 0; v < schema.vertebra_count(); ++v) {
    const double width = vertebra_dimensions(schema, im.gt.points, v)[0];
    if (!(width > 0)) continue;
    for (int i : schema.vertebra_landmarks(v)) {
      const size_t k = size_t(i);
      if ((!im.gt.visible.empty() && !im.gt.visible[k]) || !finite2(im.gt.points[k])) continue;
      const bool placed = k < im.pred.landmarks.size() && finite2(im.pred.landmarks[k]);
      const double err = placed ? std::hypot(im.pred.landmarks[k][0] - im.gt.points[k][0],
                                             im.pred.landmarks[k][1] - im.gt.points[k][1])
                                : kNaN;
      out[k] = (!placed || err > width / 3.0) ? 1 : 0;
    }
  }
  return out;
}

std::vector<int> eval_quad_levels(const Schema& schema, const EvalImage& im) {
  const int V = schema.vertebra_count();
  std::vector<int> out(size_t(V), -1);
  if (im.pred.landmarks.size() != im.gt.points.size()) return out;
  auto corner_of = [&](int i) {
    const std::string& n = schema.landmarks[size_t(i)];
    return n.substr(n.find('.') + 1);
  };
  auto gt_ok = [&](int i) { return finite2(im.gt.points[size_t(i)]) && (im.gt.visible.empty() || im.gt.visible[size_t(i)]); };
  for (int v = 0; v < V; ++v) {
    const auto idx = schema.vertebra_landmarks(v);
    bool counted = idx.size() >= 2;
    for (int i : idx) counted = counted && gt_ok(i) && finite2(im.pred.landmarks[size_t(i)]);
    if (!counted) continue;
    std::set<int> matched;
    for (int i : idx) {
      const Point2& p = im.pred.landmarks[size_t(i)];
      int best = -1;
      double best_d = kNaN;
      for (int u = 0; u < V; ++u)
        for (int j : schema.vertebra_landmarks(u)) {
          if (corner_of(j) != corner_of(i) || !gt_ok(j)) continue;
          const double d = std::hypot(p[0] - im.gt.points[size_t(j)][0], p[1] - im.gt.points[size_t(j)][1]);
          if (!(d >= best_d)) best_d = d, best = u;
        }
      matched.insert(best);
    }
    out[size_t(v)] = matched.size() > 1 ? 1 : *matched.begin() == v ? 0 : 2;
  }
  return out;
}

EvalImageErrors eval_image_errors(const Schema& schema, const EvalImage& im) {
  EvalImageErrors e;
  e.mean_px_step1 = mean_px(schema, im, im.pred.step1);
  e.mean_px_final = mean_px(schema, im, im.pred.landmarks);
  e.angle_error_step1 = angle_errors(im.gt_angles, im.pred.step1_angles, schema.angles.size());
  e.angle_error_final = angle_errors(im.gt_angles, im.pred.angles, schema.angles.size());
  for (int m : eval_gross_misses(schema, im)) e.gross_misses += m == 1;
  for (int q : eval_quad_levels(schema, im)) e.mixed_quads += q == 1;
  return e;
}

void eval_compute(EvalResult& r) {
  const Schema& s = r.schema;
  const size_t A = s.angles.size();
  std::vector<MetricsSample> step1, final;
  r.gross = GrossMissStats{};
  r.quad_levels = QuadLevelStats{};
  r.verdict = VerdictStats{};
  for (const EvalImage& im : r.images) {
    step1.push_back(sample_make(im, im.pred.step1, im.pred.step1_angles, A));
    final.push_back(sample_make(im, im.pred.landmarks, im.pred.angles, A));
    const auto miss = eval_gross_misses(s, im);
    int image_misses = 0;
    for (size_t k = 0; k < miss.size(); ++k) {
      if (miss[k] < 0) continue;
      const bool flagged = k < im.pred.landmark_flagged.size() && im.pred.landmark_flagged[k];
      ++r.gross.landmarks;
      if (miss[k] == 1) {
        ++r.gross.misses, ++image_misses;
        r.gross.misses_flagged += flagged;
      } else {
        r.gross.good_flagged += flagged;
      }
    }
    r.gross.images_with_miss += image_misses > 0;
    verdict_count(r.verdict, s, im, image_misses);
    int mixed = 0, off = 0;
    for (int q : eval_quad_levels(s, im)) {
      r.quad_levels.quads += q >= 0;
      mixed += q == 1, off += q == 2;
    }
    r.quad_levels.mixed += mixed, r.quad_levels.off_level += off;
    r.quad_levels.images_mixed += mixed > 0, r.quad_levels.images_off_level += off > 0;
  }
  r.step1 = metrics_compute(s, step1);
  r.final = metrics_compute(s, final);
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j;
  j["schema"] = schema.name;
  j["images"] = int(images.size());
  j["seconds_per_image"] = seconds_per_image;
  j["step1"] = metrics_to_json(schema, step1);
  j["final"] = metrics_to_json(schema, final);
  j["gross_misses"] = gross_json(gross);
  j["verdict"] = verdict_json(verdict);
  j["quad_levels"] = {{"quads", quad_levels.quads},         {"mixed", quad_levels.mixed},
                      {"off_level", quad_levels.off_level}, {"images_mixed", quad_levels.images_mixed},
                      {"images_off_level", quad_levels.images_off_level}};
  j["skipped"] = nlohmann::json::array();
  for (const EvalSkip& k : skipped) j["skipped"].push_back({{"source", k.source}, {"reason", k.reason}});
  j["per_image"] = nlohmann::json::array();
  for (const EvalImage& im : images) {
    const EvalImageErrors e = eval_image_errors(schema, im);
    nlohmann::json row = {{"name", im.name},
                          {"mean_px_error_step1", num_json(e.mean_px_step1)},
                          {"mean_px_error", num_json(e.mean_px_final)},
                          {"gross_misses", e.gross_misses},
                          {"mixed_quads", e.mixed_quads},
                          {"status", im.pred.status},
                          {"flags", im.pred.flags}};
    // signed, predicted − ground truth, degrees
    row["angle_error_step1_deg"] = nlohmann::json::object();
    row["angle_error_deg"] = nlohmann::json::object();
    for (size_t k = 0; k < schema.angles.size(); ++k) {
      row["angle_error_step1_deg"][schema.angles[k]] = num_json(e.angle_error_step1[k]);
      row["angle_error_deg"][schema.angles[k]] = num_json(e.angle_error_final[k]);
    }
    j["per_image"].push_back(std::move(row));
  }
  return j;
}

void eval_out_check(const std::string& out, const std::string& data) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto resolved = [&ec](const std::string& p) {  // links resolved, no trailing separator
    fs::path x = fs::weakly_canonical(fs::absolute(p), ec).lexically_normal();
    return x.has_filename() ? x : x.parent_path();
  };
  const fs::path o = resolved(out);
  fs::path d = resolved(data);
  if (!fs::is_directory(d, ec)) d = d.parent_path();  // a manifest: its entries' folder
  const auto [end, at] = std::mismatch(d.begin(), d.end(), o.begin(), o.end());
  SM_CHECK(end != d.end(), out << ": is the data folder or inside it (" << d.string() << "); eval's metrics.json and "
                               << "predictions there would be read as annotations later: write to another folder");
  if (!fs::exists(o, ec)) return;
  SM_CHECK(fs::is_directory(o, ec), out << ": exists and is not a folder");
  // eval's own files (and temporaries of a killed eval); anything else is someone else's.
  for (const auto& f : fs::directory_iterator(o, ec)) {
    const std::string n = f.path().filename().string();
    if (n.find(".tmp.") != std::string::npos || n == "report.html") continue;
    if (n == "predictions" && f.is_directory()) continue;
    if (n == "metrics.json") {
      const nlohmann::json j = nlohmann::json::parse(file_read_all(f.path().string()), nullptr, false);
      SM_CHECK(j.is_object() && j.contains("final") && j.contains("step1") && j.contains("per_image"),
               f.path().string() << ": not a metrics.json written by eval; refusing to write over it (use another --out)");
      continue;
    }
    SM_FAIL(out << ": holds '" << n << "', which eval does not write (annotations, images or other files); refusing to "
                << "mix its output with them: use a new or empty folder, or one an earlier eval wrote");
  }
}

void eval_write(const std::string& dir, const EvalResult& result, const std::string& title) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "predictions", ec);
  SM_CHECK(!ec, dir << ": cannot create the output folder (" << ec.message() << ")");
  nlohmann::json metrics = result.to_json();
  metrics["title"] = title;
  file_write_atomic((fs::path(dir) / "metrics.json").string(), metrics.dump(2) + "\n");
  for (const EvalImage& im : result.images) {
    const std::string stem = fs::path(im.name).stem().string();
    const auto pred = prediction_to_json(result.schema, im.pred, im.name, im.gt.pixel_spacing_mm);
    file_write_atomic((fs::path(dir) / "predictions" / (stem + ".json")).string(), pred.dump(2) + "\n");
  }
  file_write_atomic((fs::path(dir) / "report.html").string(), report_html_build(result, title));
}

}  // namespace sm
