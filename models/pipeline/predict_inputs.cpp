// Inputs, shards, stems and summary rows of `spinemark predict` (predict_inputs.h).
#include "models/pipeline/predict_inputs.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "models/image/image_io.h"
#include "tensor/check.h"

namespace fs = std::filesystem;

namespace sm {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The image path of one manifest line (plain path or JSON object with "image").
std::string manifest_line_image(const std::string& line, const std::string& where) {
  if (line[0] != '{') return line;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(where << ": not valid JSON (" << e.what() << ")");
  }
  SM_CHECK(j.is_object() && j.contains("image") && j["image"].is_string() && !j["image"].get<std::string>().empty(),
           where << ": a JSON line needs a non-empty string \"image\"");
  return j["image"].get<std::string>();
}

// A file without extension is taken when its first bytes are those of a DICOM file (exports
// from imaging systems often have no extension).
bool extensionless_dicom(const fs::path& p) {
  if (p.has_extension()) return false;
  std::ifstream in(p, std::ios::binary);
  std::string head(256, '\0');
  in.read(&head[0], std::streamsize(head.size()));
  head.resize(size_t(std::max<std::streamsize>(0, in.gcount())));
  return image_format_sniff(head, p.string()) == "dicom";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double v, const char* format) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

bool predict_path_is_image(const std::string& path) {
  static const char* kExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".dcm", ".dicom"};
  const std::string ext = lower(fs::path(path).extension().string());
  return std::any_of(std::begin(kExtensions), std::end(kExtensions), [&](const char* e) { return ext == e; });
}

namespace {

// The reason a non-folder entry is no input, or "" when it is one.
std::string entry_skip_reason(const fs::directory_entry& entry) {
  std::error_code ec;
  const fs::file_status link = entry.symlink_status(ec);
  if (ec) return "cannot be examined (" + ec.message() + ")";
  const fs::file_status st = fs::status(entry.path(), ec);
  if (fs::is_symlink(link) && ec) {
    if (ec == std::errc::too_many_symbolic_link_levels) return "symbolic link loop";
    if (ec == std::errc::no_such_file_or_directory) return "broken symbolic link (its target does not exist)";
    return "symbolic link that cannot be followed (" + ec.message() + ")";
  }
  if (ec) return "cannot be examined (" + ec.message() + ")";
  switch (st.type()) {
    case fs::file_type::regular: break;
    case fs::file_type::fifo: return "not a regular file (a FIFO)";
    case fs::file_type::socket: return "not a regular file (a socket)";
    case fs::file_type::block:
    case fs::file_type::character: return "not a regular file (a device)";
    default: return "not a regular file";
  }
  if (predict_path_is_image(entry.path().string())) return "";
  const std::string ext = entry.path().extension().string();
  if (ext.empty()) return extensionless_dicom(entry.path()) ? "" : "no extension, and not a DICOM file";
  if (lower(ext) == ".json") return "a .json file (annotation or prediction), not an image";
  return "extension " + ext + " is not an image's (png, jpg, jpeg, bmp, pgm, dcm, dicom)";
}

// Walks `dir` (depth first, links to folders not followed) into `listing`.
void folder_walk(const fs::path& dir, const fs::path& exclude, PredictListing& listing, int depth) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
  if (ec) {
    listing.skipped.push_back({dir.string(), "folder that cannot be listed (" + ec.message() + ")"});
    return;
  }
  for (const auto& entry : entries) {
    const std::string name = entry.path().filename().string();
    const std::string path = entry.path().string();
    std::error_code ec_entry;
    const bool is_link = entry.is_symlink(ec_entry);
    if (!name.empty() && name[0] == '.') {
      listing.skipped.push_back({path, "hidden (name starts with '.')"});
    } else if (!is_link && entry.is_directory(ec_entry)) {
      if (!exclude.empty() && fs::equivalent(entry.path(), exclude, ec_entry))
        listing.skipped.push_back({path, "the output folder (--out)"});
      else if (fs::exists(entry.path() / kPredictLockFile, ec_entry))
        listing.skipped.push_back({path, "an output folder of spinemark predict (holds " + std::string(kPredictLockFile) + ")"});
      else if (depth >= 64)
        listing.skipped.push_back({path, "folder nested deeper than 64 levels"});
      else
        folder_walk(entry.path(), exclude, listing, depth + 1);
    } else if (is_link && fs::is_directory(entry.path(), ec_entry)) {
      listing.skipped.push_back({path, "symbolic link to a folder (not followed)"});
    } else {
      const std::string reason = entry_skip_reason(entry);
      if (reason.empty())
        listing.images.push_back(path);
      else
        listing.skipped.push_back({path, reason});
    }
  }
}

}  // namespace

PredictListing predict_folder_list(const std::string& dir, const std::string& exclude) {
  std::error_code ec;
  SM_CHECK(fs::is_directory(dir, ec), dir << ": not a folder");
  fs::path exclude_path;
  if (!exclude.empty() && fs::is_directory(exclude, ec)) exclude_path = exclude;
  PredictListing listing;
  folder_walk(dir, exclude_path, listing, 0);
  SM_CHECK(!listing.images.empty(), dir << ": no image files (png, jpg, jpeg, bmp, pgm, dcm, dicom) in the folder or "
                                           "its sub-folders");
  std::sort(listing.images.begin(), listing.images.end());
  std::sort(listing.skipped.begin(), listing.skipped.end(),
            [](const PredictSkipped& a, const PredictSkipped& b) { return a.path < b.path; });
  return listing;
}

std::vector<std::string> predict_inputs_from_folder(const std::string& dir) { return predict_folder_list(dir).images; }

std::vector<std::string> predict_inputs_from_manifest(const std::string& manifest) {
  std::ifstream in(manifest);
  SM_CHECK(in.good(), manifest << ": cannot open the manifest");
  const fs::path base = fs::path(manifest).parent_path();
  std::vector<std::string> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (number == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const fs::path image = manifest_line_image(line, manifest + ":" + std::to_string(number));
    out.push_back(image.is_absolute() ? image.string() : (base / image).string());
  }
  SM_CHECK(!in.bad(), manifest << ": read error");
  SM_CHECK(!out.empty(), manifest << ": the manifest lists no image");
  return out;
}

namespace {

// Digits only, at most 6 of them: no sign, no blank, no overflow of the conversion.
bool shard_number(const std::string& s, int& value) {
  if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  value = std::stoi(s);
  return true;
}

// The variable `name` as a shard number, or an error naming it and what was expected.
int shard_env_number(const std::function<const char*(const char*)>& env, const char* name, const std::string& text) {
  const char* v = env(name);
  int value = 0;
  SM_CHECK(v && shard_number(v, value), "shard '" << text << "': " << name << " is " << (v ? "'" + std::string(v) + "'" : "not set")
                                                  << " (expected a whole number from the scheduler)");
  return value;
}

// The 1-based shard index of this task of a Slurm job array or Kubernetes Indexed Job.
int shard_env_index(const std::function<const char*(const char*)>& env, const std::string& text) {
  if (env("SLURM_ARRAY_TASK_ID")) {
    const int id = shard_env_number(env, "SLURM_ARRAY_TASK_ID", text);
    const int first = env("SLURM_ARRAY_TASK_MIN") ? shard_env_number(env, "SLURM_ARRAY_TASK_MIN", text) : 0;
    SM_CHECK(id >= first, "shard '" << text << "': SLURM_ARRAY_TASK_ID " << id << " is below SLURM_ARRAY_TASK_MIN " << first);
    return id - first + 1;
  }
  if (env("JOB_COMPLETION_INDEX")) return shard_env_number(env, "JOB_COMPLETION_INDEX", text) + 1;
  SM_FAIL("shard '" << text << "': no scheduler index in the environment (SLURM_ARRAY_TASK_ID of a Slurm job array, "
                    << "or JOB_COMPLETION_INDEX of a Kubernetes Indexed Job); give K/N instead");
}

}  // namespace

PredictShard predict_shard_parse(const std::string& text, const std::function<const char*(const char*)>& env) {
  const size_t slash = text.find('/');
  const std::string first = text.substr(0, slash);
  int k = 0, n = 0;
  bool parsed = false;
  if (first == "auto") {
    if (slash == std::string::npos) {
      SM_CHECK(env("SLURM_ARRAY_TASK_ID"), "shard 'auto': needs a Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT); "
                                           "elsewhere give auto/N (N shards) or K/N");
      n = shard_env_number(env, "SLURM_ARRAY_TASK_COUNT", text);
      parsed = true;
    } else {
      parsed = shard_number(text.substr(slash + 1), n);
    }
    if (parsed) k = shard_env_index(env, text);
    SM_CHECK(!parsed || (n >= 1 && n <= 100000 && k >= 1 && k <= n),
             "shard '" << text << "': the scheduler makes this task " << k << " of " << n << " (expected 1 <= K <= N <= 100000)");
  } else {
    parsed = slash != std::string::npos && shard_number(first, k) && shard_number(text.substr(slash + 1), n);
  }
  SM_CHECK(parsed && n >= 1 && n <= 100000 && k >= 1 && k <= n,
           "shard '" << text << "': expected K/N with 1 <= K <= N <= 100000, e.g. 2/4 (or auto, auto/N)");
  return {k, n};
}

std::vector<std::string> predict_inputs_shard(std::vector<std::string> inputs, const PredictShard& shard) {
  SM_CHECK(shard.count >= 1 && shard.index >= 1 && shard.index <= shard.count,
           "shard " << shard.index << "/" << shard.count << " is not a valid K/N");
  std::sort(inputs.begin(), inputs.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (int(i % size_t(shard.count)) == shard.index - 1) out.push_back(inputs[i]);
  return out;
}

std::vector<std::string> predict_output_names(const std::vector<std::string>& inputs, const std::string& base) {
  std::vector<fs::path> absolute;
  for (const auto& p : inputs) {
    SM_CHECK(!fs::path(p).filename().empty() && !fs::path(p).stem().empty(),
             p << ": no file name to name the outputs after");
    absolute.push_back(fs::absolute(p).lexically_normal());
  }
  fs::path root;
  if (!base.empty()) {
    root = fs::absolute(base).lexically_normal();
  } else if (!absolute.empty()) {  // the deepest folder common to all inputs
    root = absolute[0].parent_path();
    for (const auto& p : absolute)
      while (!root.empty() && root != root.root_path()) {
        const fs::path rel = p.parent_path().lexically_relative(root);
        if (!rel.empty() && *rel.begin() != "..") break;
        root = root.parent_path();
      }
  }
  std::vector<std::string> names;
  std::map<std::string, std::string> seen;  // name -> first file with it
  for (size_t i = 0; i < inputs.size(); ++i) {
    fs::path rel = absolute[i].lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") rel = absolute[i].filename();  // not under the root: its file name
    const std::string name = (rel.parent_path() / rel.stem()).generic_string();
    const auto [it, fresh] = seen.emplace(name, inputs[i]);
    SM_CHECK(fresh, inputs[i] << ": same output name '" << name << "' as " << it->second
                              << " (outputs are named by the path without extension; rename one of them)");
    names.push_back(name);
  }
  return names;
}

namespace {

// The length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when the byte there starts none.
size_t utf8_sequence_length(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned c = byte(i);
  if (c < 0x80) return 1;
  const auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return byte(k) >= lo && byte(k) <= hi; };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

bool predict_text_is_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string predict_text_escaped(const std::string& s) {
  if (predict_text_is_utf8(s)) return s;
  std::string out;
  char hex[5];
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      std::snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(s[i]));
      out += hex;
      ++i;
    } else {
      out += s[i] == '\\' ? std::string("\\\\") : s.substr(i, n);
      i += n;
    }
  }
  return out;
}

std::string predict_text_hex(const std::string& s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += {kDigits[c >> 4], kDigits[c & 15]};
  return out;
}

PredictSummaryRow predict_summary_row_from_json(const nlohmann::json& prediction, const std::string& image,
                                                const std::vector<std::string>& angle_names) {
  PredictSummaryRow row;
  row.image = image;
  const auto& angles = prediction.contains("angles") ? prediction["angles"] : nlohmann::json::object();
  for (const auto& name : angle_names) {
    const bool have = angles.is_object() && angles.contains(name) && angles[name].is_number();
    row.angles.push_back(have ? angles[name].get<double>() : std::nan(""));
  }
  // The film's verdict; a prediction file written before the verdict existed carries none, and
  // nobody has vouched for it: review.
  const bool has_status = prediction.contains("status") && prediction["status"].is_string();
  const std::string status = has_status ? prediction["status"].get<std::string>() : "";
  row.status = status == "ok" || status == "rejected" ? status : "review";
  if (prediction.contains("flags") && prediction["flags"].is_array()) row.flags = int(prediction["flags"].size());
  if (prediction.contains("timings_ms") && prediction["timings_ms"].is_object()) {
    const auto& t = prediction["timings_ms"];
    if (t.contains("total") && t["total"].is_number()) {
      row.ms = t["total"].get<double>();
    } else {
      row.ms = 0;
      for (const auto& [stage, ms] : t.items())
        if (ms.is_number()) row.ms += ms.get<double>();
    }
  }
  return row;
}

std::string predict_summary_csv(const std::vector<std::string>& angle_names, const std::vector<PredictSummaryRow>& rows) {
  std::string out = "image,status";
  for (const auto& a : angle_names) out += "," + csv_field(a);
  out += ",flags,ms,error\n";
  for (const auto& r : rows) {
    out += csv_field(r.image) + "," + csv_field(r.status);
    for (size_t k = 0; k < angle_names.size(); ++k) out += "," + csv_number(k < r.angles.size() ? r.angles[k] : NAN, "%.3f");
    out += "," + (r.status != "error" ? std::to_string(r.flags) : std::string()) + "," + csv_number(r.ms, "%.1f") + "," +
           csv_field(r.error) + "\n";
  }
  return out;
}

}  // namespace sm
