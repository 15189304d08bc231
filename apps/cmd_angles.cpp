// `spinemark angles --data DIR`: one JSON line per image {"image": ..., "angles": {...}} (method.md
// §2.1) from the ground-truth landmarks. For the AASCE Cobb rule the stored order is used when the
// annotation keeps it ("stored_landmarks"), so that angles.csv is reproduced (method.md §7.1).
#include <cmath>
#include <cstdio>
#include <iostream>

#include "apps/command.h"
#include "models/image/image_io.h"
#include "models/measure/angles.h"
#include "tensor/check.h"
#include "train/data/dataset.h"

namespace sm::app {

namespace {

struct AnglesConfig {
  std::string data;
  std::vector<std::string> schema_files;
};

bool schema_has_cobb(const Schema& s) {
  for (const auto& r : s.angle_rules)
    if (r.type == "aasce_cobb") return true;
  return false;
}

// Image height: the annotation's "image_size" when present, else the image header.
double image_height_get(const DatasetEntry& e) {
  const auto& x = e.annotation.extra;
  if (x.contains("image_size") && x["image_size"].is_array() && x["image_size"].size() == 2 && x["image_size"][1].is_number())
    return x["image_size"][1].get<double>();
  return image_info(e.image_path, ImageCheck::header).height;
}

// "spinemark angles: <source>: <reason>", without repeating the source when the reason names it.
void error_report(const std::string& source, const std::string& what) {
  const bool named = what.compare(0, source.size(), source) == 0;
  std::fprintf(stderr, "spinemark angles: %s\n", (named ? what : source + ": " + what).c_str());
}

// One JSON line; an angle that cannot be computed (absent or coincident landmarks) is null and
// named in "flags" as the pipeline does (angle_not_computable:<name>).
nlohmann::ordered_json angles_line(const DatasetEntry& e) {
  const Schema& s = schema_lookup(e.annotation.schema);
  const bool cobb = schema_has_cobb(s);
  std::vector<Point2> stored;
  if (cobb) stored = dataset_stored_landmarks(e, s);
  // In mm (method.md §3): a film with pixels taller than wide would otherwise tilt every endplate.
  const PixelSpacing& spacing = e.annotation.pixel_spacing_mm;
  const auto angles = angles_compute(s, e.annotation.points, cobb ? image_height_get(e) : 0.0, spacing,
                                     stored.empty() ? nullptr : &stored);
  nlohmann::ordered_json line;  // "image" first, as in method.md §2.1
  line["image"] = e.annotation.image;
  line["angles"] = nlohmann::ordered_json::object();
  std::vector<std::string> flags;
  for (size_t k = 0; k < angles.size(); ++k) {
    const bool ok = std::isfinite(angles[k]);
    line["angles"][s.angles[k]] = ok ? nlohmann::ordered_json(angles[k]) : nlohmann::ordered_json(nullptr);
    if (!ok) flags.push_back("angle_not_computable:" + s.angles[k]);
  }
  const std::string anisotropic = pixel_anisotropy_flag(spacing);  // measured in mm all the same
  if (!anisotropic.empty()) flags.push_back(anisotropic);
  if (!flags.empty()) line["flags"] = flags;
  return line;
}

// A bad annotation is reported by name and skipped; the others are still written, and the exit
// code says that something was skipped.
void angles_run(const AnglesConfig& cfg) {
  for (const auto& f : cfg.schema_files) schema_register(schema_load(f));
  int errors = 0;
  DatasetOptions opt;
  opt.check_images_exist = false;  // only needed when the Cobb rule must read the image height
  opt.on_bad_entry = [&errors](const std::string& source, const std::string& what) {
    error_report(source, what);
    ++errors;
  };
  int written = 0;
  for (const auto& e : dataset_list(cfg.data, opt)) {
    try {
      const std::string text = angles_line(e).dump();
      std::cout << text << "\n";
      ++written;
    } catch (const std::exception& ex) {
      error_report(e.source, ex.what());
      ++errors;
    }
  }
  std::cout.flush();
  if (errors > 0) {
    std::fprintf(stderr, "spinemark angles: %d annotations written, %d skipped with errors\n", written, errors);
    command_set_exit_code(1);
  }
}

void angles_setup(CLI::App& root) {
  auto cfg = std::make_shared<AnglesConfig>();
  CLI::App* cmd = root.add_subcommand("angles", "Angles from each image's ground-truth landmarks, one JSON line per image");
  cmd->add_option("--data", cfg->data, "dataset folder (one JSON per image) or .jsonl manifest")->required();
  cmd->add_option("--schema-file", cfg->schema_files, "extra schema definition (JSON) used by the annotations");
  cmd->callback([cfg]() { angles_run(*cfg); });
}

}  // namespace

SM_REGISTER_COMMAND(angles, 31, angles_setup);

}  // namespace sm::app
