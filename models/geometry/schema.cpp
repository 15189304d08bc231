// Landmark schemas as data (method.md §2): parsing and checking a schema definition, the canonical
// JSON form, loading from a file and a small registry of user schemas. Keys: docs/geometry.md.
#include "models/geometry/schema.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "tensor/check.h"
#include "tensor/file_io.h"

namespace sm {

int Schema::landmark_index(const std::string& landmark) const {
  auto it = std::find(landmarks.begin(), landmarks.end(), landmark);
  return it == landmarks.end() ? -1 : int(it - landmarks.begin());
}

int Schema::vertebra_index(const std::string& vertebra) const {
  for (size_t i = 0; i < vertebrae.size(); ++i)
    if (vertebrae[i].name == vertebra) return int(i);
  return -1;
}

std::vector<int> Schema::vertebra_landmarks(int vertebra) const {
  SM_CHECK(vertebra >= 0 && vertebra < vertebra_count(),
           "vertebra index " << vertebra << " out of range for schema '" << name << "'");
  std::vector<int> out;
  for (const auto& c : vertebrae[size_t(vertebra)].corners)
    out.push_back(landmark_index(vertebrae[size_t(vertebra)].name + "." + c));
  return out;
}

std::array<int, 2> Schema::segment_landmarks(int vertebra, const SegmentSpec& segment) const {
  const auto& v = vertebrae.at(size_t(vertebra));
  int a = landmark_index(v.name + "." + segment.from), b = landmark_index(v.name + "." + segment.to);
  if (a < 0 || b < 0) return {-1, -1};
  return {a, b};
}

const SegmentSpec* Schema::endplate_find(const std::string& n) const {
  for (const auto& e : endplates)
    if (e.name == n) return &e;
  for (const auto& w : walls)
    if (w.name == n) return &w;
  return nullptr;
}

namespace {

std::string where(const Schema& s) { return "schema '" + (s.name.empty() ? "?" : s.name) + "': "; }

std::string string_get(const nlohmann::json& j, const char* key, const std::string& ctx) {
  SM_CHECK(j.is_object() && j.contains(key) && j[key].is_string(),
           ctx << "key '" << key << "' must be a string");
  return j[key].get<std::string>();
}

std::vector<std::string> strings_get(const nlohmann::json& j, const std::string& ctx) {
  SM_CHECK(j.is_array(), ctx << "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : j) {
    SM_CHECK(e.is_string(), ctx << "must be an array of strings, got " << e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<SegmentSpec> segments_parse(const nlohmann::json& j, const char* key, const Schema& s,
                                        const std::set<std::string>& corners) {
  std::vector<SegmentSpec> out;
  if (!j.contains(key)) return out;
  std::string ctx = where(s) + "'" + key + "' ";
  SM_CHECK(j[key].is_array(), ctx << "must be an array of {name, from, to}");
  for (const auto& e : j[key]) {
    SegmentSpec seg{string_get(e, "name", ctx), string_get(e, "from", ctx), string_get(e, "to", ctx)};
    SM_CHECK(corners.count(seg.from) && corners.count(seg.to),
             ctx << "segment '" << seg.name << "' names a corner no vertebra has ('" << seg.from
                 << "' -> '" << seg.to << "')");
    SM_CHECK(seg.from != seg.to, ctx << "segment '" << seg.name << "' joins a corner to itself");
    out.push_back(seg);
  }
  return out;
}

void vertebrae_parse(const nlohmann::json& j, Schema& s, std::set<std::string>& all_corners) {
  std::vector<std::string> default_corners;
  if (j.contains("corners")) default_corners = strings_get(j["corners"], where(s) + "'corners' ");
  SM_CHECK(j.contains("vertebrae") && j["vertebrae"].is_array() && !j["vertebrae"].empty(),
           where(s) << "'vertebrae' must be a non-empty array");
  for (const auto& v : j["vertebrae"]) {
    VertebraSpec spec;
    if (v.is_string()) {
      spec.name = v.get<std::string>();
      spec.corners = default_corners;
    } else {
      spec.name = string_get(v, "name", where(s) + "vertebra ");
      spec.corners = v.contains("corners") ? strings_get(v["corners"], where(s) + spec.name + ".corners ")
                                           : default_corners;
    }
    SM_CHECK(!spec.name.empty() && spec.name.find('.') == std::string::npos,
             where(s) << "vertebra name '" << spec.name << "' must be non-empty and contain no '.'");
    SM_CHECK(s.vertebra_index(spec.name) < 0, where(s) << "vertebra '" << spec.name << "' appears twice");
    SM_CHECK(!spec.corners.empty(), where(s) << "vertebra '" << spec.name
                                             << "' has no corners (give 'corners' at the top or in it)");
    std::set<std::string> seen;
    for (const auto& c : spec.corners) {
      SM_CHECK(!c.empty() && seen.insert(c).second,
               where(s) << "vertebra '" << spec.name << "' has an empty or repeated corner '" << c << "'");
      s.landmarks.push_back(spec.name + "." + c);
      all_corners.insert(c);
    }
    s.vertebrae.push_back(spec);
  }
}

void flip_parse(const nlohmann::json& j, Schema& s, const std::set<std::string>& corners) {
  std::map<std::string, std::string> swap;
  if (j.contains("flip")) {
    const auto& f = j["flip"];
    SM_CHECK(f.is_object(), where(s) << "'flip' must be an object {\"swap_corners\": [[a, b], ...]}");
    for (auto it = f.begin(); it != f.end(); ++it)
      SM_CHECK(it.key() == "swap_corners", where(s) << "unknown key 'flip." << it.key() << "'");
    if (f.contains("swap_corners")) {
      SM_CHECK(f["swap_corners"].is_array(), where(s) << "'flip.swap_corners' must be an array of pairs");
      for (const auto& pair : f["swap_corners"]) {
        auto p = strings_get(pair, where(s) + "'flip.swap_corners' entry ");
        SM_CHECK(p.size() == 2, where(s) << "'flip.swap_corners' entries are pairs, got " << pair.dump());
        for (const auto& c : p)
          SM_CHECK(corners.count(c), where(s) << "'flip.swap_corners' names unknown corner '" << c << "'");
        SM_CHECK(!swap.count(p[0]) && !swap.count(p[1]),
                 where(s) << "corner swapped twice in 'flip.swap_corners': " << pair.dump());
        swap[p[0]] = p[1];
        swap[p[1]] = p[0];
      }
    }
  }
  s.flip_permutation.assign(s.landmarks.size(), -1);
  for (int v = 0; v < s.vertebra_count(); ++v)
    for (const auto& c : s.vertebrae[size_t(v)].corners) {
      int i = s.landmark_index(s.vertebrae[size_t(v)].name + "." + c);
      std::string partner = swap.count(c) ? swap[c] : c;
      int k = s.landmark_index(s.vertebrae[size_t(v)].name + "." + partner);
      SM_CHECK(k >= 0, where(s) << "vertebra '" << s.vertebrae[size_t(v)].name << "' has corner '" << c
                                << "' but not its flip partner '" << partner << "'");
      s.flip_permutation[size_t(i)] = k;
    }
}

// "<vertebra>.<endplate>" must name an existing vertebra and a segment it has all corners of.
void endplate_ref_check(const Schema& s, const std::string& ref, const std::string& angle) {
  auto dot = ref.find('.');
  SM_CHECK(dot != std::string::npos, where(s) << "angle '" << angle << "': '" << ref
                                              << "' must be <vertebra>.<endplate>");
  int v = s.vertebra_index(ref.substr(0, dot));
  SM_CHECK(v >= 0, where(s) << "angle '" << angle << "' names unknown vertebra in '" << ref << "'");
  const SegmentSpec* seg = s.endplate_find(ref.substr(dot + 1));
  SM_CHECK(seg, where(s) << "angle '" << angle << "' names unknown endplate in '" << ref << "'");
  SM_CHECK(s.segment_landmarks(v, *seg)[0] >= 0,
           where(s) << "angle '" << angle << "': vertebra of '" << ref << "' lacks its corners");
}

void angles_parse(const nlohmann::json& j, Schema& s) {
  if (!j.contains("angles")) return;
  SM_CHECK(j["angles"].is_array(), where(s) << "'angles' must be an array of angle rules");
  for (const auto& a : j["angles"]) {
    std::string ctx = where(s) + "angle rule ";
    AngleSpec r;
    r.type = string_get(a, "type", ctx);
    if (a.contains("names")) r.names = strings_get(a["names"], ctx + "'names' ");
    else r.names = {string_get(a, "name", ctx)};
    if (a.contains("first")) r.first = string_get(a, "first", ctx);
    if (a.contains("second")) r.second = string_get(a, "second", ctx);
    if (a.contains("sign")) {
      SM_CHECK(a["sign"].is_number(), ctx << "'sign' must be a number");
      r.sign = a["sign"].get<double>();
    }
    const std::string& n0 = r.names.empty() ? std::string("?") : r.names[0];
    if (r.type == "endplate_difference") {
      SM_CHECK(r.names.size() == 1, ctx << "'" << n0 << "': endplate_difference gives one angle");
      endplate_ref_check(s, r.first, n0);
      endplate_ref_check(s, r.second, n0);
    } else if (r.type == "endplate_slope") {
      SM_CHECK(r.names.size() == 1, ctx << "'" << n0 << "': endplate_slope gives one angle");
      endplate_ref_check(s, r.first, n0);
    } else if (r.type == "aasce_cobb") {
      SM_CHECK(r.names.size() == 3, ctx << "aasce_cobb gives 3 angles; 'names' must list 3");
      for (const auto* e : {&r.first, &r.second}) {
        const SegmentSpec* seg = s.endplate_find(*e);
        SM_CHECK(seg, ctx << "aasce_cobb: 'first'/'second' must name the upper and lower endplate, got '"
                          << *e << "'");
        for (int v = 0; v < s.vertebra_count(); ++v)
          SM_CHECK(s.segment_landmarks(v, *seg)[0] >= 0,
                   ctx << "aasce_cobb needs both endplates on every vertebra; '"
                       << s.vertebrae[size_t(v)].name << "' lacks '" << *e << "'");
      }
    } else {
      SM_FAIL(ctx << "unknown angle type '" << r.type
                  << "' (known: endplate_difference, endplate_slope, aasce_cobb)");
    }
    for (const auto& n : r.names) {
      SM_CHECK(std::find(s.angles.begin(), s.angles.end(), n) == s.angles.end(),
               where(s) << "angle '" << n << "' defined twice");
      s.angles.push_back(n);
    }
    s.angle_rules.push_back(r);
  }
}

}  // namespace

Schema schema_from_json(const nlohmann::json& j) {
  Schema s;
  SM_CHECK(j.is_object(), "schema definition must be a JSON object");
  s.name = string_get(j, "name", "schema: ");
  static const std::set<std::string> known = {"name", "description", "corners", "vertebrae", "endplates",
                                              "walls", "frame", "flip", "angles"};
  for (auto it = j.begin(); it != j.end(); ++it)
    SM_CHECK(known.count(it.key()), where(s) << "unknown key '" << it.key()
                                             << "' (known: name, description, corners, vertebrae, "
                                                "endplates, walls, frame, flip, angles)");
  std::set<std::string> corners;
  vertebrae_parse(j, s, corners);
  s.endplates = segments_parse(j, "endplates", s, corners);
  s.walls = segments_parse(j, "walls", s, corners);
  if (j.contains("frame")) s.frame = string_get(j, "frame", where(s));
  SM_CHECK(s.frame == "image" || s.frame == "anterior_positive",
           where(s) << "'frame' must be \"image\" or \"anterior_positive\", got '" << s.frame << "'");
  flip_parse(j, s, corners);
  angles_parse(j, s);
  s.definition = schema_to_json(s);
  if (j.contains("description")) s.definition["description"] = j["description"];
  return s;
}

nlohmann::json schema_to_json(const Schema& s) {
  nlohmann::json j;
  j["name"] = s.name;
  if (s.definition.is_object() && s.definition.contains("description"))
    j["description"] = s.definition["description"];
  j["vertebrae"] = nlohmann::json::array();
  for (const auto& v : s.vertebrae) j["vertebrae"].push_back({{"name", v.name}, {"corners", v.corners}});
  auto segs = [](const std::vector<SegmentSpec>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : v) a.push_back({{"name", e.name}, {"from", e.from}, {"to", e.to}});
    return a;
  };
  j["endplates"] = segs(s.endplates);
  j["walls"] = segs(s.walls);
  j["frame"] = s.frame;
  // Swap pairs recovered from the permutation (corner names are the same on every vertebra).
  std::set<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < s.flip_permutation.size(); ++i) {
    const std::string& a = s.landmarks[i];
    const std::string& b = s.landmarks[size_t(s.flip_permutation[i])];
    std::string ca = a.substr(a.find('.') + 1), cb = b.substr(b.find('.') + 1);
    if (ca < cb) pairs.insert({ca, cb});
  }
  j["flip"]["swap_corners"] = nlohmann::json::array();
  for (const auto& p : pairs) j["flip"]["swap_corners"].push_back({p.first, p.second});
  j["angles"] = nlohmann::json::array();
  for (const auto& r : s.angle_rules) {
    nlohmann::json a = {{"type", r.type}, {"names", r.names}};
    if (!r.first.empty()) a["first"] = r.first;
    if (!r.second.empty()) a["second"] = r.second;
    if (r.sign != 1.0) a["sign"] = r.sign;
    j["angles"].push_back(a);
  }
  return j;
}

Schema schema_load(const std::string& name_or_path) {
  for (const auto& n : schema_builtin_names())
    if (n == name_or_path) return schema_builtin(n);
  if (!std::filesystem::exists(name_or_path)) {
    // Something that looks like a file path is a missing file, not an unknown schema name.
    const bool path_like = name_or_path.find('/') != std::string::npos ||
                           std::filesystem::path(name_or_path).extension() == ".json";
    SM_CHECK(!path_like, name_or_path << ": the schema file does not exist");
    return schema_lookup(name_or_path);
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file_read_all(name_or_path));
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(name_or_path << ": not valid JSON: " << e.what());
  }
  try {
    return schema_from_json(j);
  } catch (const Error& e) {
    SM_FAIL(name_or_path << ": " << e.what());
  }
}

namespace {
std::mutex g_registry_mutex;
std::map<std::string, Schema>& registry() {
  static std::map<std::string, Schema> r;
  return r;
}
}  // namespace

void schema_register(const Schema& schema) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  registry()[schema.name] = schema;
}

const Schema& schema_lookup(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(g_registry_mutex);
    auto it = registry().find(name);
    if (it != registry().end()) return it->second;  // std::map nodes are stable
  }
  return schema_builtin(name);
}

}  // namespace sm
