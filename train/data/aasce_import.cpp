// AASCE / SpineWeb-16 importer (see aasce_import.h; method.md §7.1).
#include "train/data/aasce_import.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <unistd.h>

#include "models/image/image_io.h"
#include "models/measure/angles.h"
#include "models/measure/cobb.h"
#include "tensor/check.h"
#include "tensor/file_io.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

constexpr int kVertebrae = 17, kPoints = 68;

std::vector<std::string> lines_read(const fs::path& p) {
  std::ifstream in(p);
  SM_CHECK(in, p.string() << ": cannot open (an AASCE folder holds filenames.csv, landmarks.csv, angles.csv, images/)");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first file name.
    if (out.empty() && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    out.push_back(line);
  }
  while (!out.empty() && out.back().empty()) out.pop_back();  // trailing blank lines
  SM_CHECK(!out.empty(), p.string() << ": empty file");
  return out;
}

std::vector<double> numbers_parse(const std::string& line, const fs::path& p, int line_no, size_t expected) {
  std::vector<double> v;
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t end = line.find(',', pos);
    if (end == std::string::npos) end = line.size();
    std::string field = line.substr(pos, end - pos);
    char* stop = nullptr;
    const double x = std::strtod(field.c_str(), &stop);
    SM_CHECK(!field.empty() && stop && *stop == '\0' && std::isfinite(x),
             p.string() << ":" << line_no << ": field " << v.size() + 1 << " ('" << field << "') is not a number");
    v.push_back(x);
    pos = end + 1;
  }
  SM_CHECK(v.size() == expected, p.string() << ":" << line_no << ": expected " << expected << " numbers, got " << v.size());
  return v;
}

double block_centre_y(const std::vector<Point2>& pts, int block) {
  double y = 0;
  for (int k = 0; k < 4; ++k) y += pts[size_t(4 * block + k)][1];
  return y / 4;
}

}  // namespace

std::vector<AasceRecord> aasce_read(const std::string& src, bool read_image_sizes, const AasceBadRow& on_bad_row) {
  const fs::path dir(src);
  const auto names = lines_read(dir / "filenames.csv");
  const auto marks = lines_read(dir / "landmarks.csv");
  const auto angles = lines_read(dir / "angles.csv");
  SM_CHECK(names.size() == marks.size() && names.size() == angles.size(),
           src << ": filenames.csv has " << names.size() << " rows, landmarks.csv " << marks.size()
               << ", angles.csv " << angles.size() << "; they must match row for row");
  std::vector<AasceRecord> out;
  for (size_t i = 0; i < names.size(); ++i) {
    AasceRecord r;
    r.row = int(i) + 1;
    r.file = names[i];
    try {
      SM_CHECK(!r.file.empty(), (dir / "filenames.csv").string() << ":" << r.row << ": empty file name");
      r.image_path = (dir / "images" / r.file).string();
      const auto v = numbers_parse(marks[i], dir / "landmarks.csv", r.row, 2 * kPoints);
      const auto a = numbers_parse(angles[i], dir / "angles.csv", r.row, 3);
      r.angles = {a[0], a[1], a[2]};
      double w = 1, h = 1;
      if (read_image_sizes) {
        SM_CHECK(fs::exists(r.image_path), (dir / "filenames.csv").string() << ":" << r.row << ": image '"
                                                                            << r.image_path << "' does not exist");
        const ImageInfo info = image_info(r.image_path);
        r.width = info.width, r.height = info.height;
        w = r.width, h = r.height;
      }
      for (int k = 0; k < kPoints; ++k) r.stored.push_back({v[size_t(k)] * w, v[size_t(kPoints + k)] * h});
    } catch (const Error& e) {
      if (!on_bad_row) throw;
      on_bad_row(r.row, r.file, e.what());
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> AasceQuirks::flags() const {
  std::vector<std::string> f;
  if (t1_stored_last) f.push_back("t1_stored_last_reordered");
  if (irregular_order) f.push_back("irregular_order");
  if (overlapping_vertebrae) f.push_back("overlapping_vertebrae");
  for (int v : corner_order) f.push_back("corner_order:" + schema_builtin("aasce-ap").vertebrae[size_t(v)].name);
  if (!points_outside.empty()) f.push_back("points_outside_image");
  return f;
}

bool AasceQuirks::regular() const {
  return !irregular_order && !overlapping_vertebrae && corner_order.empty() && points_outside.empty();
}

AasceQuirks aasce_quirks(const AasceRecord& r) {
  SM_CHECK(r.stored.size() == size_t(kPoints), r.file << ": " << r.stored.size() << " points, expected " << kPoints);
  AasceQuirks q;
  std::vector<double> c;
  for (int b = 0; b < kVertebrae; ++b) c.push_back(block_centre_y(r.stored, b));
  // T1 stored last: the last block is the topmost one and the others are in order.
  q.order.resize(kVertebrae);
  for (int v = 0; v < kVertebrae; ++v) q.order[size_t(v)] = v;
  if (*std::min_element(c.begin(), c.end()) == c.back() && c.back() < c.front()) {
    q.t1_stored_last = true;
    for (int v = 0; v < kVertebrae; ++v) q.order[size_t(v)] = (v + kVertebrae - 1) % kVertebrae;
  }
  std::vector<double> gaps;
  for (int v = 0; v + 1 < kVertebrae; ++v) gaps.push_back(c[size_t(q.order[size_t(v + 1)])] - c[size_t(q.order[size_t(v)])]);
  std::vector<double> sorted = gaps;
  std::sort(sorted.begin(), sorted.end());
  const double median_gap = sorted[sorted.size() / 2];
  for (double g : gaps) {
    if (g <= 0) q.irregular_order = true;
    else if (g < 0.2 * median_gap) q.overlapping_vertebrae = true;
  }
  // Corners: top-left left of top-right, bottom-left left of bottom-right, tops above bottoms.
  for (int v = 0; v < kVertebrae; ++v) {
    const int b = 4 * q.order[size_t(v)];
    const Point2 &tl = r.stored[size_t(b)], &tr = r.stored[size_t(b + 1)], &bl = r.stored[size_t(b + 2)],
                 &br = r.stored[size_t(b + 3)];
    if (!(tl[0] < tr[0] && bl[0] < br[0] && tl[1] < bl[1] && tr[1] < br[1])) q.corner_order.push_back(v);
  }
  // Beyond the image edge under any pixel convention: outside [0, W] × [0, H].
  if (r.width > 0 && r.height > 0)
    for (int k = 0; k < kPoints; ++k) {
      const Point2& p = r.stored[size_t(k)];
      if (p[0] < 0 || p[0] > r.width || p[1] < 0 || p[1] > r.height) q.points_outside.push_back(k);
    }
  return q;
}

Annotation aasce_annotation(const AasceRecord& r, const AasceQuirks& q, const std::string& image_ref) {
  const Schema& s = schema_builtin("aasce-ap");
  Annotation a;
  a.image = image_ref;
  a.schema = s.name;
  a.points.resize(size_t(kPoints));
  a.visible.assign(size_t(kPoints), true);
  for (int v = 0; v < kVertebrae; ++v)
    for (int k = 0; k < 4; ++k) a.points[size_t(4 * v + k)] = r.stored[size_t(4 * q.order[size_t(v)] + k)];
  for (int k : q.points_outside)  // stored index -> anatomical index
    for (int v = 0; v < kVertebrae; ++v)
      if (q.order[size_t(v)] == k / 4) a.visible[size_t(4 * v + k % 4)] = false;
  a.extra["flags"] = q.flags();
  a.extra["stored_landmarks"] = nlohmann::json::array();
  for (const auto& p : r.stored) a.extra["stored_landmarks"].push_back({p[0], p[1]});
  a.extra["image_size"] = {r.width, r.height};
  a.extra["reference_angles"] = {{"cobb1", r.angles[0]}, {"cobb2", r.angles[1]}, {"cobb3", r.angles[2]}};
  a.extra["source"] = "aasce16-train row " + std::to_string(r.row);
  return a;
}

namespace {

// "<src>/filenames.csv:<row> (<file>): <reason>"; a reason that already opens with that place
// is not repeated (one from landmarks.csv or angles.csv keeps its own).
std::string row_error(const fs::path& src, int row, const std::string& file, const std::string& what) {
  const std::string place = (src / "filenames.csv").string() + ":" + std::to_string(row);
  const std::string reason = what.compare(0, place.size() + 2, place + ": ") == 0 ? what.substr(place.size() + 2) : what;
  return place + " (" + file + "): " + reason;
}

// The output folder must be new or empty: a rerun into an old import would mix two imports.
void out_check(const fs::path& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  SM_CHECK(fs::is_directory(out, ec), out.string() << ": exists and is not a folder");
  SM_CHECK(fs::is_empty(out, ec), out.string() << ": the folder exists and is not empty (import into a new folder)");
}

// Rows of distinct output names: two rows writing the same <stem>.json (a duplicate, or names
// differing only in extension) would overwrite each other silently, so the later one is refused.
std::vector<const AasceRecord*> records_unique_stems(const std::vector<AasceRecord>& records,
                                                     const std::function<void(int, const std::string&, const std::string&)>& bad_row) {
  std::map<std::string, const AasceRecord*> by_stem;
  std::vector<const AasceRecord*> todo;
  for (const auto& r : records) {
    const std::string stem = fs::path(r.file).stem().string();
    const auto [it, fresh] = by_stem.emplace(stem, &r);
    if (fresh) todo.push_back(&r);
    else bad_row(r.row, r.file, "would be written as " + stem + ".json, as row " + std::to_string(it->second->row) +
                                    " ('" + it->second->file + "') is; skipped");
  }
  return todo;
}

// What the import found, for its report.
struct ImportTally {
  std::map<std::string, std::vector<std::string>> by_flag;  // quirk kind -> files
  int regular = 0, written = 0;
  double max_dev = 0;  // largest |Cobb rule on the stored order − angles.csv|, degrees
  std::string max_dev_file;
};

// One row into `tmp`: its annotation, or a skip through bad_row when its data is unusable. A
// write failure (no space, a size limit) throws: it stops the whole import.
void record_import(const AasceRecord& r, const fs::path& tmp, const fs::path& out, bool absolute_paths, ImportTally& tally,
                   const std::function<void(int, const std::string&, const std::string&)>& bad_row) {
  const Schema& s = schema_builtin("aasce-ap");
  Annotation a;
  AasceQuirks q;
  std::vector<double> ang;
  try {  // the row's data: a problem here skips this row only
    q = aasce_quirks(r);
    const fs::path img = fs::absolute(r.image_path).lexically_normal();
    std::string ref = absolute_paths ? img.string() : img.lexically_relative(fs::absolute(out)).string();
    if (ref.empty()) ref = img.string();
    a = aasce_annotation(r, q, ref);
    // Reproduction check: the Cobb rule on the stored order against angles.csv.
    ang = angles_compute(s, r.stored, r.height, nullptr);
    SM_CHECK(std::isfinite(ang[0]), "the Cobb angles cannot be computed from its landmarks (coincident corners)");
  } catch (const Error& e) {
    bad_row(r.row, r.file, std::string(e.what()) + "; skipped");
    return;
  }
  annotation_write((tmp / fs::path(r.file).stem()).string() + ".json", a, s);
  ++tally.written;
  for (const auto& f : q.flags()) tally.by_flag[f.substr(0, f.find(':'))].push_back(r.file);
  tally.regular += q.regular();
  for (int k = 0; k < 3; ++k)
    if (std::fabs(ang[size_t(k)] - r.angles[size_t(k)]) > tally.max_dev)
      tally.max_dev = std::fabs(ang[size_t(k)] - r.angles[size_t(k)]), tally.max_dev_file = r.file;
}

// The sibling temporary folder <out>.tmp.<pid> that becomes `out` at the end, so that a failed
// write (a full disk) leaves no half folder behind. Removes a killed import's temporary first and
// returns its name(s) in `stale`.
fs::path import_tmp_make(const fs::path& out, std::vector<std::string>& stale) {
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  SM_CHECK(!ec && fs::is_directory(parent), parent.string() << ": cannot create the folder (" << (ec ? ec.message() : "not a folder") << ")");
  stale = file_tmp_stale_remove(parent.string());
  const fs::path tmp = parent / (out.filename().string() + ".tmp." + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  SM_CHECK(!ec, tmp.string() << ": cannot create the folder (" << ec.message() << ")");
  return tmp;
}

}  // namespace

nlohmann::json aasce_import(const std::string& src, const std::string& out_in, const AasceImportOptions& opt) {
  fs::path out = fs::path(out_in).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();  // "data/" names the folder "data"
  out_check(out);
  std::vector<std::string> errors;
  auto bad_row = [&](int row, const std::string& file, const std::string& what) {
    errors.push_back(row_error(src, row, file, what));
  };
  const std::vector<AasceRecord> records = aasce_read(src, true, bad_row);
  const std::vector<const AasceRecord*> todo = records_unique_stems(records, bad_row);
  std::vector<std::string> stale;
  const fs::path tmp = import_tmp_make(out, stale);
  ImportTally tally;
  try {
    for (const AasceRecord* r : todo) record_import(*r, tmp, out, opt.absolute_paths, tally, bad_row);
    // Rows left out: the folder says so itself (INCOMPLETE.txt), not only this run's stderr.
    if (!errors.empty()) {
      std::string text = "This import is incomplete: " + std::to_string(errors.size()) + " rows of " + src +
                         " were not imported.\n";
      for (const auto& e : errors) text += e + "\n";
      file_write_atomic((tmp / kAasceIncompleteFile).string(), text);
    }
    fs::rename(tmp, out);  // replaces `out` when it is an empty folder
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    SM_FAIL("import stopped, nothing was written to " << out.string() << ": " << e.what());
  }
  nlohmann::json rep;
  rep["src"] = src;
  rep["out"] = out_in;
  rep["images"] = tally.written;
  rep["complete"] = errors.empty();
  rep["stale_temporaries_removed"] = stale;
  rep["errors"] = errors;
  rep["regular"] = tally.regular;
  rep["quirks"] = nlohmann::json::object();
  for (const auto& [flag, files] : tally.by_flag) rep["quirks"][flag] = {{"count", files.size()}, {"files", files}};
  rep["cobb_stored_order_max_abs_diff_deg"] = tally.max_dev;
  rep["cobb_stored_order_max_abs_diff_file"] = tally.max_dev_file;
  return rep;
}

}  // namespace sm
