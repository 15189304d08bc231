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

std::vector<std::string> predict_inputs_from_folder(const std::string& dir) {
  std::error_code ec;
  SM_CHECK(fs::is_directory(dir, ec), dir << ": not a folder");
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code ec_file;
    if (!entry.is_regular_file(ec_file)) continue;
    if (predict_path_is_image(entry.path().string()) || extensionless_dicom(entry.path())) out.push_back(entry.path().string());
  }
  SM_CHECK(!ec, dir << ": cannot list the folder (" << ec.message() << ")");
  SM_CHECK(!out.empty(), dir << ": no image files (png, jpg, jpeg, bmp, pgm, dcm, dicom) in the folder");
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> predict_inputs_from_manifest(const std::string& manifest) {
  std::ifstream in(manifest);
  SM_CHECK(in.good(), manifest << ": cannot open the manifest");
  const fs::path base = fs::path(manifest).parent_path();
  std::vector<std::string> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const fs::path image = manifest_line_image(line, manifest + ":" + std::to_string(number));
    out.push_back(image.is_absolute() ? image.string() : (base / image).string());
  }
  SM_CHECK(!in.bad(), manifest << ": read error");
  SM_CHECK(!out.empty(), manifest << ": the manifest lists no image");
  return out;
}

PredictShard predict_shard_parse(const std::string& text) {
  int k = 0, n = 0;
  char tail = 0;
  const bool parsed = std::sscanf(text.c_str(), "%d/%d%c", &k, &n, &tail) == 2;
  SM_CHECK(parsed && n >= 1 && n <= 100000 && k >= 1 && k <= n,
           "shard '" << text << "': expected K/N with 1 <= K <= N <= 100000, e.g. 2/4");
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

std::string predict_input_stem(const std::string& path) { return fs::path(path).stem().string(); }

void predict_stems_check_unique(const std::vector<std::string>& inputs) {
  std::map<std::string, std::string> seen;  // stem -> first file with it
  for (const auto& path : inputs) {
    const std::string stem = predict_input_stem(path);
    SM_CHECK(!stem.empty(), path << ": no file name to name the outputs after");
    const auto [it, fresh] = seen.emplace(stem, path);
    SM_CHECK(fresh, path << ": same name '" << stem << "' as " << it->second
                         << " (outputs are named by the file name; rename one of them)");
  }
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
