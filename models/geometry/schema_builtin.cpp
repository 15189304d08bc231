// The built-in landmark schemas of method.md §2, written as the same JSON a user would put in a
// file for schema_load (see docs/geometry.md for the keys). Nothing else in the code names them.
#include <mutex>

#include "models/geometry/schema.h"
#include "tensor/check.h"

namespace sm {

namespace {

// lumbar-lateral: the paper's task. Names are anatomical (anterior/posterior), so a horizontal
// flip keeps every label. Endplate vectors run posterior -> anterior (e = anterior − posterior).
constexpr const char* kLumbarLateral = R"json({
  "name": "lumbar-lateral",
  "description": "Lateral lumbar spine: L1-L5 with 4 corners, S1 with its upper endplate (Cina et al. 2021)",
  "corners": ["sup_ant", "sup_post", "inf_post", "inf_ant"],
  "vertebrae": ["L1", "L2", "L3", "L4", "L5", {"name": "S1", "corners": ["sup_ant", "sup_post"]}],
  "endplates": [
    {"name": "superior", "from": "sup_post", "to": "sup_ant"},
    {"name": "inferior", "from": "inf_post", "to": "inf_ant"}
  ],
  "walls": [
    {"name": "anterior", "from": "sup_ant", "to": "inf_ant"},
    {"name": "posterior", "from": "sup_post", "to": "inf_post"}
  ],
  "frame": "anterior_positive",
  "flip": {"swap_corners": []},
  "angles": [
    {"type": "endplate_difference", "name": "L1_L5_lordosis", "first": "L1.superior", "second": "L5.inferior"},
    {"type": "endplate_difference", "name": "L1_S1_lordosis", "first": "L1.superior", "second": "S1.superior"},
    {"type": "endplate_slope", "name": "sacral_slope", "first": "S1.superior", "sign": -1}
  ]
})json";

// aasce-ap: SpineWeb dataset 16 / AASCE 2019. Names are image-side, so a horizontal flip swaps
// left and right. Endplate vectors run image-left -> image-right.
constexpr const char* kAasceAp = R"json({
  "name": "aasce-ap",
  "description": "AP thoracolumbar spine: T1-L5 with 4 corners in the AASCE order",
  "corners": ["top_left", "top_right", "bottom_left", "bottom_right"],
  "vertebrae": ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
                "L1", "L2", "L3", "L4", "L5"],
  "endplates": [
    {"name": "superior", "from": "top_left", "to": "top_right"},
    {"name": "inferior", "from": "bottom_left", "to": "bottom_right"}
  ],
  "walls": [
    {"name": "left", "from": "top_left", "to": "bottom_left"},
    {"name": "right", "from": "top_right", "to": "bottom_right"}
  ],
  "frame": "image",
  "flip": {"swap_corners": [["top_left", "top_right"], ["bottom_left", "bottom_right"]]},
  "angles": [
    {"type": "aasce_cobb", "names": ["cobb1", "cobb2", "cobb3"], "first": "superior", "second": "inferior"}
  ]
})json";

}  // namespace

std::vector<std::string> schema_builtin_names() { return {"lumbar-lateral", "aasce-ap"}; }

const Schema& schema_builtin(const std::string& name) {
  // Parsed once, on first use (thread-safe static initialisation).
  static const std::vector<Schema> schemas = [] {
    std::vector<Schema> v;
    for (const char* text : {kLumbarLateral, kAasceAp})
      v.push_back(schema_from_json(nlohmann::json::parse(text)));
    return v;
  }();
  for (const auto& s : schemas)
    if (s.name == name) return s;
  std::string known;
  for (const auto& n : schema_builtin_names()) known += (known.empty() ? "" : ", ") + n;
  SM_FAIL("unknown schema '" << name << "' (built in: " << known
                             << "; a user schema is loaded from a JSON file)");
}

}  // namespace sm
