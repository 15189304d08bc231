// eval_run (see eval.h): the 2-step pipeline on every dataset entry, timed, with the ground-truth
// angles beside it. Kept apart from eval.cpp so that the metrics and the report link without
// the networks (the report test builds its EvalResult by hand).
#include <filesystem>
#include <set>

#include "models/image/image_io.h"
#include "models/measure/angles.h"
#include "tensor/check.h"
#include "tensor/stopwatch.h"
#include "train/eval/eval.h"

namespace sm {

namespace {

// In mm with the film's pixel spacing, as the pipeline measures the predicted angles.
std::vector<double> gt_angles_compute(const DatasetEntry& e, const Schema& s, const Image& film) {
  return dataset_angles(e, s, film.pixel_spacing_mm, [&film] { return double(film.height); });
}

// The image's file name; when that stem is taken (same name in two folders of a manifest), the
// path as written with separators replaced, so every prediction file gets its own name.
std::string name_unique(const DatasetEntry& e, std::set<std::string>& stems) {
  namespace fs = std::filesystem;
  std::string name = fs::path(e.image_path).filename().string();
  if (stems.insert(fs::path(name).stem().string()).second) return name;
  std::string alt = e.annotation.image;
  for (char& c : alt)
    if (c == '/' || c == '\\' || c == ':') c = '_';
  for (int k = 2; !stems.insert(fs::path(alt).stem().string()).second; ++k)
    alt = fs::path(e.annotation.image).stem().string() + "_" + std::to_string(k) + fs::path(name).extension().string();
  return alt;
}

}  // namespace

EvalResult eval_run(const Pipeline& pipeline, const std::vector<DatasetEntry>& entries, const EvalProgress& progress) {
  EvalResult r;
  r.schema = pipeline.spec().schema;
  std::set<std::string> stems;
  double seconds = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const DatasetEntry& e = entries[i];
    SM_CHECK(e.annotation.schema == r.schema.name,
             e.source << ": schema '" << e.annotation.schema << "' but the model is for '" << r.schema.name << "'");
    Image film;
    try {
      film = image_read(e.image_path);
    } catch (const Error& err) {  // reported and skipped; the rest is evaluated
      r.skipped.push_back({e.source, std::string("the film cannot be read: ") + err.what()});
      if (progress) progress(int(i + 1), int(entries.size()));
      continue;
    }
    EvalImage im;
    im.name = name_unique(e, stems);
    im.image_path = e.image_path;
    im.gt = e.annotation;
    const Stopwatch clock;
    try {
      im.pred = pipeline.run(film);
    } catch (const Error& err) {  // named and skipped like an unreadable film
      r.skipped.push_back({e.source, std::string("the pipeline failed: ") + err.what()});
      if (progress) progress(int(i + 1), int(entries.size()));
      continue;
    }
    seconds += clock.seconds();
    im.gt_angles = gt_angles_compute(e, r.schema, film);
    r.images.push_back(std::move(im));
    if (progress) progress(int(i + 1), int(entries.size()));
  }
  r.seconds_per_image = r.images.empty() ? 0.0 : seconds / double(r.images.size());
  eval_compute(r);
  return r;
}

}  // namespace sm
