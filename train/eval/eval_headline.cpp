// The headline numbers of an evaluation as text (see eval.h): what `spinemark eval` and
// `spinemark demo` print when they finish.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "train/eval/eval.h"

namespace sm {

namespace {

std::string f2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

}  // namespace

std::string eval_headline(const EvalResult& e) {
  std::ostringstream s;
  const Schema& sc = e.schema;
  s << "test images: " << e.images.size() << ", " << f2(e.seconds_per_image * 1000) << " ms per image\n";
  s << "median relative error x / y:  step 1 " << f2(e.step1.overall.rel_x.median) << " % / " << f2(e.step1.overall.rel_y.median)
    << " %   step 1+2 " << f2(e.final.overall.rel_x.median) << " % / " << f2(e.final.overall.rel_y.median) << " %\n";
  s << "median landmark error:        step 1 " << f2(e.step1.overall.px.median) << " px   step 1+2 " << f2(e.final.overall.px.median)
    << " px (mean " << f2(e.final.overall.px.mean) << " px)\n";
  for (size_t k = 0; k < sc.angles.size() && k < e.final.per_angle.size(); ++k)
    s << "median |angle error| " << sc.angles[k] << ": step 1 " << f2(e.step1.per_angle[k].median_abs) << " deg   step 1+2 "
      << f2(e.final.per_angle[k].median_abs) << " deg\n";
  if (e.final.smape_percent) s << "SMAPE: step 1 " << f2(*e.step1.smape_percent) << " %   step 1+2 " << f2(*e.final.smape_percent) << " %\n";
  const GrossMissStats& g = e.gross;
  s << "gross misses (> 1/3 vertebra width): " << g.misses << " of " << g.landmarks << " landmarks ("
    << f2(100.0 * g.misses / std::max(1, g.landmarks)) << " %) on " << g.images_with_miss << " images; " << g.misses_flagged
    << " of them flagged; " << g.good_flagged << " good landmarks flagged\n";
  const QuadLevelStats& q = e.quad_levels;
  s << "quadrilaterals on the right level: " << q.quads - q.mixed - q.off_level << " of " << q.quads << "; mixed " << q.mixed
    << " (on " << q.images_mixed << " images), on another level " << q.off_level << " (on " << q.images_off_level << " images)\n";
  const VerdictStats& v = e.verdict;
  s << "verdict: " << v.ok << " ok, " << v.review << " review, " << v.rejected << " rejected; films with a gross miss marked: "
    << v.with_miss_caught << " of " << v.with_miss << ", others marked: " << v.without_miss_marked << " of " << v.without_miss
    << "; films with an angle off > " << f2(kVerdictAngleErrorDeg) << " deg marked: " << v.angle_off_caught << " of "
    << v.angle_off << ", others marked: " << v.angle_fine_marked << " of " << v.angle_fine << "\n";
  return s.str();
}

}  // namespace sm
