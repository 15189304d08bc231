// Landmark schemas (method.md §2): which vertebrae, which corners, how labels move under a
// horizontal flip and which angles apply, all described as data (JSON) so that a user can add
// a schema (e.g. cervical) without changing code. `lumbar-lateral` and `aasce-ap` are built in.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sm {

struct VertebraSpec {
  std::string name;                  // "L1", "S1", "T12", ...
  std::vector<std::string> corners;  // corner names in stored order, e.g. sup_ant, sup_post, ...
};

// A directed segment between two corners of one vertebra (an endplate or a wall): the vector
// to − from. Lateral endplates run posterior -> anterior, AP endplates image-left -> image-right.
struct SegmentSpec {
  std::string name;  // "superior", "inferior", "anterior", ...
  std::string from;  // corner name
  std::string to;    // corner name
};

// One angle rule of the schema (method.md §3). Types:
//   endplate_difference: names[0] = θ(first) − θ(second), first/second "<vertebra>.<endplate>"
//   endplate_slope:      names[0] = sign · θ(first)
//   aasce_cobb:          names[0..2] = the AASCE Cobb rule (method.md §3.1) over all vertebrae,
//                        using the endplates named in first (upper) and second (lower)
struct AngleSpec {
  std::string type;
  std::vector<std::string> names;
  std::string first, second;
  double sign = 1.0;
};

struct Schema {
  std::string name;
  std::vector<VertebraSpec> vertebrae;  // cranial -> caudal
  std::vector<std::string> landmarks;   // "<vertebra>.<corner>" in schema order
  std::vector<int> flip_permutation;    // after a horizontal flip, landmark i takes label flip_permutation[i]
  std::vector<std::string> angles;      // angle names this schema computes
  nlohmann::json definition;            // the full JSON the schema was built from (endplates, angle rules...)
  std::vector<SegmentSpec> endplates;   // e.g. superior, inferior (a vertebra may lack some corners)
  std::vector<SegmentSpec> walls;       // e.g. anterior, posterior / left, right (height direction)
  // Angle frame: "anterior_positive" mirrors x when the patient faces image-left (method.md §3);
  // "image" measures in the image frame as it is.
  std::string frame = "image";
  std::vector<AngleSpec> angle_rules;   // how each entry of `angles` is computed

  int landmark_index(const std::string& landmark) const;  // -1 when unknown
  int vertebra_index(const std::string& vertebra) const;  // -1 when unknown
  std::vector<int> vertebra_landmarks(int vertebra) const;  // landmark indices of one vertebra
  int landmark_count() const { return int(landmarks.size()); }
  int vertebra_count() const { return int(vertebrae.size()); }
  // Landmark indices {from, to} of a segment of one vertebra; {-1, -1} when it lacks a corner.
  std::array<int, 2> segment_landmarks(int vertebra, const SegmentSpec& segment) const;
  // The endplate / wall spec of that name, or nullptr.
  const SegmentSpec* endplate_find(const std::string& name) const;
};

// Built-in schema by name; throws sm::Error naming the known schemas when unknown.
const Schema& schema_builtin(const std::string& name);
// Parses a schema definition; throws sm::Error with the offending key on malformed input.
Schema schema_from_json(const nlohmann::json& definition);
// A built-in name, or the path of a JSON file holding a schema definition.
Schema schema_load(const std::string& name_or_path);
std::vector<std::string> schema_builtin_names();
// The canonical (expanded) JSON definition; schema_from_json(schema_to_json(s)) rebuilds s.
nlohmann::json schema_to_json(const Schema& schema);
// User schemas (e.g. loaded with schema_load from a file) can be registered under their name so
// that annotations naming them resolve; schema_lookup checks registered ones, then built-ins.
void schema_register(const Schema& schema);
const Schema& schema_lookup(const std::string& name);

}  // namespace sm
