// Import of SpineWeb dataset 16 / AASCE 2019 (method.md §7.1) into our annotation format
// (method.md §2.1, schema aasce-ap). Order quirks are detected from the data, reported, fixed
// where the fix is certain (T1 block stored last) and flagged otherwise; the stored order is
// kept so that the Cobb rule of §3.1 can reproduce angles.csv.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/annotation.h"

namespace sm {

// One row of the AASCE CSVs with its image size.
struct AasceRecord {
  int row = 0;                 // 1-based line in the CSVs
  std::string file;            // image file name as in filenames.csv
  std::string image_path;      // <src>/images/<file>
  int width = 0, height = 0;   // from the image header
  std::vector<Point2> stored;  // (68,) pixels: x = x_norm·W, y = y_norm·H, stored order
  std::array<double, 3> angles{0, 0, 0};  // angles.csv
};

// Reads filenames.csv, landmarks.csv (68 x/W then 68 y/H per row) and angles.csv from `src`,
// and each image's size from its header. Errors name the file and line.
// read_image_sizes = false leaves width/height 0 and stored points normalised (for tests).
std::vector<AasceRecord> aasce_read(const std::string& src, bool read_image_sizes = true);

// What the importer finds in one record. Vertebra centres are the mean y of their 4 corners.
struct AasceQuirks {
  bool t1_stored_last = false;          // the topmost block is stored last, the rest in order
  bool irregular_order = false;         // centres not increasing cranial -> caudal (after the T1 fix)
  bool overlapping_vertebrae = false;   // two neighbours' centres closer than 0.2 × the median spacing
  std::vector<int> corner_order;        // vertebrae (anatomical index) whose 4 corners are not
                                        // TL, TR, BL, BR (left < right, top < bottom)
  std::vector<int> points_outside;      // stored indices of points beyond the image edge
  std::vector<int> order;               // anatomical vertebra v = stored block order[v]
  std::vector<std::string> flags() const;
  bool regular() const;                 // nothing irregular left after the T1 fix
};

AasceQuirks aasce_quirks(const AasceRecord& record);

// The annotation for one record: landmarks in anatomical order (T1 fix applied), points outside
// the image marked not visible, extra keys "flags", "stored_landmarks" (stored order, pixels),
// "image_size" [W, H], "reference_angles" (angles.csv) and "source".
Annotation aasce_annotation(const AasceRecord& record, const AasceQuirks& quirks, const std::string& image_ref);

struct AasceImportOptions {
  bool absolute_paths = false;  // "image" as an absolute path instead of relative to --out
};

// Converts a whole AASCE folder into one JSON per image in `out` (created if needed). Returns
// the report: counts and file lists per quirk, and the largest deviation of the Cobb rule on the
// stored order from angles.csv.
nlohmann::json aasce_import(const std::string& src, const std::string& out, const AasceImportOptions& options = {});

}  // namespace sm
