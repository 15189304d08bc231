// Listing and loading a dataset folder or JSON-lines manifest (see dataset.h).
#include "train/data/dataset.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "models/image/image_io.h"
#include "tensor/check.h"
#include "tensor/json_field.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

// Finds an image with the annotation's stem when "image" is empty (a folder of x.png + x.json).
std::string image_resolve(const fs::path& base, const std::string& image, const fs::path& json_path) {
  if (!image.empty()) {
    fs::path p(image);
    return (p.is_absolute() ? p : base / p).lexically_normal().string();
  }
  for (const char* ext : {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".dcm", ".PNG", ".JPG", ".JPEG", ".DCM"}) {
    fs::path p = json_path;
    p.replace_extension(ext);
    std::error_code ec;  // a link loop is "not found" here, and named when the image is read
    if (fs::exists(p, ec)) return p.string();
  }
  return "";
}

void entry_finish(DatasetEntry& e, const fs::path& base, const fs::path& json_path, const DatasetOptions& opt) {
  e.image_path = image_resolve(base, e.annotation.image, json_path);
  SM_CHECK(!e.image_path.empty(), e.source << ": 'image' is empty and no image with the same stem was found");
  if (opt.check_images_exist) {
    std::error_code ec;
    const bool there = fs::exists(e.image_path, ec);
    SM_CHECK(!ec, e.source << ": image '" << e.image_path << "' cannot be reached (" << ec.message() << ")");
    SM_CHECK(there, e.source << ": image '" << e.image_path << "' does not exist");
  }
  if (!opt.schema.empty())
    SM_CHECK(e.annotation.schema == opt.schema,
             e.source << ": schema '" << e.annotation.schema << "', expected '" << opt.schema << "'");
}

// Why a *.json entry that is a symbolic link cannot be followed ("" when it can).
std::string link_problem(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(p, ec)) || ec) return "";
  const fs::file_status st = fs::status(p, ec);
  if (ec && ec.value() == ELOOP) return "symbolic link loop (" + ec.message() + "), skipped";
  if (ec || st.type() == fs::file_type::not_found) return "dangling symbolic link (its target does not exist), skipped";
  return "";
}

std::vector<DatasetEntry> folder_list(const fs::path& dir, const DatasetOptions& opt) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& f = it->path();
    if (f.extension() != ".json") continue;
    const std::string problem = link_problem(f);
    if (!problem.empty()) {
      if (opt.on_skipped) opt.on_skipped(f.string(), problem);
      else if (opt.on_bad_entry) opt.on_bad_entry(f.string(), f.string() + ": " + problem);
      continue;
    }
    std::error_code ec_type;
    if (fs::is_regular_file(f, ec_type)) files.push_back(f);
  }
  SM_CHECK(!ec, dir.string() << ": cannot list the folder (" << ec.message() << ")");
  std::sort(files.begin(), files.end());
  std::vector<DatasetEntry> out;
  for (const auto& f : files) {
    DatasetEntry e;
    e.source = f.string();
    try {
      try {
        e.annotation = annotation_read(f.string());  // its errors name the file
        entry_finish(e, f.parent_path(), f, opt);
      } catch (const fs::filesystem_error& ex) {
        SM_FAIL(e.source << ": " << ex.code().message());
      }
    } catch (const Error& ex) {
      if (!opt.on_bad_entry) throw;
      opt.on_bad_entry(e.source, ex.what());
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<DatasetEntry> manifest_list(const fs::path& file, const DatasetOptions& opt) {
  std::ifstream in(file);
  SM_CHECK(in, file.string() << ": cannot open the manifest");
  std::vector<DatasetEntry> out;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    DatasetEntry e;
    e.source = file.string() + ":" + std::to_string(no);
    try {
      try {
        const nlohmann::json j = nlohmann::json::parse(line);
        e.annotation = annotation_from_json(j, schema_lookup(json_field_required<std::string>(j, "schema", "annotation")));
      } catch (const nlohmann::json::exception& ex) {
        SM_FAIL(e.source << ": not valid JSON: " << ex.what());
      } catch (const Error& ex) {
        SM_FAIL(e.source << ": " << ex.what());
      }
      fs::path stem_path = file.parent_path() / fs::path(e.annotation.image).stem();
      entry_finish(e, file.parent_path(), stem_path, opt);
    } catch (const Error& ex) {
      if (!opt.on_bad_entry) throw;
      opt.on_bad_entry(e.source, ex.what());
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

std::vector<DatasetEntry> dataset_list(const std::string& path, const DatasetOptions& opt) {
  std::error_code ec;
  SM_CHECK(fs::exists(path, ec), "dataset '" << path << "' does not exist" << (ec ? " (" + ec.message() + ")" : std::string()));
  std::vector<DatasetEntry> out;
  if (fs::is_directory(path)) out = folder_list(path, opt);
  else if (fs::path(path).extension() == ".jsonl") out = manifest_list(path, opt);
  else SM_FAIL("dataset '" << path << "' must be a folder of annotation JSON files or a .jsonl manifest");
  SM_CHECK(!out.empty(), "dataset '" << path << "' holds no annotations (*.json in a folder, or lines in a .jsonl)");
  for (const auto& e : out)
    SM_CHECK(e.annotation.schema == out[0].annotation.schema,
             e.source << ": schema '" << e.annotation.schema << "' differs from '" << out[0].annotation.schema
                      << "' of " << out[0].source << " (one dataset, one schema)");
  return out;
}

std::vector<Point2> dataset_stored_landmarks(const DatasetEntry& e, const Schema& s) {
  std::vector<Point2> out;
  if (!e.annotation.extra.is_object() || !e.annotation.extra.contains("stored_landmarks")) return out;
  const auto points = json_field(e.annotation.extra, "stored_landmarks", std::vector<std::vector<double>>{}, e.source);
  SM_CHECK(points.size() == size_t(s.landmark_count()),
           e.source << ": 'stored_landmarks' must be an array of " << s.landmark_count() << " [x, y] points");
  for (const auto& p : points) {
    SM_CHECK(p.size() == 2, e.source << ": 'stored_landmarks' holds an entry that is not [x, y]");
    out.push_back({p[0], p[1]});
  }
  return out;
}

std::vector<double> dataset_angles(const DatasetEntry& e, const Schema& s, const PixelSpacing& spacing,
                                   const std::function<double()>& film_height) {
  if (!schema_has_cobb(s)) return angles_compute(s, e.annotation.points, 0.0, spacing);
  const std::vector<Point2> stored = dataset_stored_landmarks(e, s);
  const nlohmann::json& x = e.annotation.extra;
  const bool sized = x.contains("image_size") && x["image_size"].is_array() && x["image_size"].size() == 2 &&
                     x["image_size"][1].is_number();
  const double height = sized ? x["image_size"][1].get<double>() : film_height();
  return angles_compute(s, e.annotation.points, height, spacing, stored.empty() ? nullptr : &stored);
}

nlohmann::ordered_json dataset_angles_line(const DatasetEntry& e) {
  const Schema& s = schema_lookup(e.annotation.schema);
  const PixelSpacing& spacing = e.annotation.pixel_spacing_mm;
  const auto angles = dataset_angles(e, s, spacing, [&e] { return double(image_info(e.image_path, ImageCheck::header).height); });
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

}  // namespace sm
