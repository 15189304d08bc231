// Dataset format (issue 3, method.md §2.1): either a folder holding one annotation JSON per image
// (same stem; "image" relative to the JSON's folder or absolute) or a JSON-lines manifest with one
// annotation object per line ("image" relative to the manifest's folder or absolute).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/measure/angles.h"

namespace sm {

struct DatasetEntry {
  std::string source;      // where the annotation came from: "a/x.json" or "list.jsonl:12"
  std::string image_path;  // resolved path of the image (absolute or relative to the working dir)
  Annotation annotation;   // as read; annotation.image is the path as written in the file
};

struct DatasetOptions {
  bool check_images_exist = true;  // fail when an entry's image file is missing
  std::string schema;              // when set, every entry must use this schema
  // When set, an entry that cannot be read (bad JSON, unknown schema, missing image, ...) is
  // passed here (source, message naming it) and skipped instead of failing the whole listing,
  // for commands that report each bad file and go on.
  std::function<void(const std::string& source, const std::string& error)> on_bad_entry;
  // A folder entry named *.json that is no readable file at all (a dangling symbolic link, a
  // symbolic-link loop, a link the program may not follow) is always skipped, never fatal: it
  // is passed here (source, reason), else to on_bad_entry, so that the command names it.
  std::function<void(const std::string& source, const std::string& reason)> on_skipped;
};

// `path` is a folder (every *.json in it, sorted by name; subfolders are not searched) or a
// .jsonl manifest. Throws sm::Error naming the file (and line) on the first bad entry (unless
// on_bad_entry is set), an empty dataset, or entries with mixed schemas; never a raw
// filesystem error (unresolvable links are skipped, see on_skipped).
std::vector<DatasetEntry> dataset_list(const std::string& path, const DatasetOptions& options = {});

// The annotation's "stored_landmarks" (the dataset's own point order, e.g. AASCE's, which the
// Cobb rule of method.md §3.1 must see to reproduce angles.csv); empty when it has none.
// Throws naming the entry when the key is malformed.
std::vector<Point2> dataset_stored_landmarks(const DatasetEntry& entry, const Schema& schema);

// The angles of an entry's ground-truth landmarks, in mm with `spacing` (method.md §3). For a
// Cobb schema the rule reads the stored order when the annotation keeps it (so that AASCE's
// angles.csv is reproduced, §7.1) and the image height from the annotation's "image_size" [w, h]
// (what the dataset's angles were computed with), else from `film_height()` (called only then).
std::vector<double> dataset_angles(const DatasetEntry& entry, const Schema& schema, const PixelSpacing& spacing,
                                   const std::function<double()>& film_height);

// One line of `spinemark angles` (method.md §2.1, "Angles"): {"image", "angles": {name: degrees
// or null}, "flags"}: the annotation's angles in mm with its own pixel spacing (the image header
// is read only when a Cobb schema needs the height); a null angle is named in "flags" as the
// pipeline does (angle_not_computable:<name>), and so are anisotropic pixels.
nlohmann::ordered_json dataset_angles_line(const DatasetEntry& entry);

}  // namespace sm
