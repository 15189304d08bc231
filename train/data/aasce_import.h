// Import of SpineWeb dataset 16 / AASCE 2019 (method.md §7.1) into our annotation format
// (method.md §2.1, schema aasce-ap). Order quirks are detected from the data, reported, fixed
// where the fix is certain (T1 block stored last) and flagged otherwise; the stored order is
// kept so that the Cobb rule of §3.1 can reproduce angles.csv.
#pragma once
#include <array>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/geometry/annotation.h"

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

// A row that cannot be imported: its 1-based row, its file name and the reason.
using AasceBadRow = std::function<void(int row, const std::string& file, const std::string& error)>;

// Reads filenames.csv (a UTF-8 byte-order mark is skipped), landmarks.csv (68 x/W then 68 y/H
// per row) and angles.csv from `src`, and each image's size from its header. Errors name the
// file and line. A bad row (not numbers, missing or unreadable image) throws, or with
// on_bad_row is reported there and left out; a missing file or mismatched row counts always throw.
// read_image_sizes = false leaves width/height 0 and stored points normalised (for tests).
std::vector<AasceRecord> aasce_read(const std::string& src, bool read_image_sizes = true,
                                    const AasceBadRow& on_bad_row = nullptr);

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

// Converts a whole AASCE folder into one JSON per image in `out`, which must be new or empty.
// Rows that cannot be imported (bad numbers, missing or unreadable image, degenerate landmarks,
// a second row with the same output name) are left out and listed in the report's "errors"
// (each names filenames.csv, the row and the file), and the folder then holds
// kAasceIncompleteFile listing them. Everything is written into a temporary sibling folder
// renamed to `out` at the end: a failed write (full disk, file-size limit) throws and leaves
// nothing. Returns the report: images written, "complete", errors, counts and file lists per
// quirk, and the largest deviation of the Cobb rule on the stored order from angles.csv.
constexpr const char* kAasceIncompleteFile = "INCOMPLETE.txt";

nlohmann::json aasce_import(const std::string& src, const std::string& out, const AasceImportOptions& options = {});

}  // namespace sm
