// Schemas as data (method.md §2) and the annotation file format (§2.1): built-ins, JSON round
// trips, a user schema from a file, and clear errors on malformed input.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"
#include "tensor/check.h"
#include "tensor/file_io.h"

using namespace sm;
using nlohmann::json;

TEST_CASE("built-in schemas") {
  const Schema& lat = schema_builtin("lumbar-lateral");
  CHECK(lat.landmark_count() == 22);
  CHECK(lat.landmarks.front() == "L1.sup_ant");
  CHECK(lat.landmarks[3] == "L1.inf_ant");
  CHECK(lat.landmarks.back() == "S1.sup_post");
  CHECK(lat.vertebra_landmarks(lat.vertebra_index("S1")).size() == 2);
  for (int i = 0; i < 22; ++i) CHECK(lat.flip_permutation[size_t(i)] == i);  // anatomical names
  CHECK(lat.angles == std::vector<std::string>{"L1_L5_lordosis", "L1_S1_lordosis", "sacral_slope"});
  CHECK(lat.frame == "anterior_positive");

  const Schema& ap = schema_builtin("aasce-ap");
  CHECK(ap.landmark_count() == 68);
  CHECK(ap.landmarks[0] == "T1.top_left");
  CHECK(ap.landmarks[67] == "L5.bottom_right");
  CHECK(ap.flip_permutation[0] == 1);  // top_left <-> top_right
  CHECK(ap.flip_permutation[1] == 0);
  CHECK(ap.flip_permutation[2] == 3);
  CHECK(ap.flip_permutation[66] == 67);
  CHECK(ap.angles == std::vector<std::string>{"cobb1", "cobb2", "cobb3"});
  CHECK_THROWS_WITH_AS(schema_builtin("cervical"), doctest::Contains("lumbar-lateral"), Error);
}

TEST_CASE("schema JSON round trip") {
  for (const auto& name : schema_builtin_names()) {
    const Schema& s = schema_builtin(name);
    const Schema t = schema_from_json(json::parse(schema_to_json(s).dump()));
    CHECK(t.name == s.name);
    CHECK(t.landmarks == s.landmarks);
    CHECK(t.flip_permutation == s.flip_permutation);
    CHECK(t.angles == s.angles);
    CHECK(t.frame == s.frame);
    REQUIRE(t.endplates.size() == s.endplates.size());
    for (size_t i = 0; i < s.endplates.size(); ++i) CHECK(t.endplates[i].to == s.endplates[i].to);
    CHECK(schema_to_json(t) == schema_to_json(s));
  }
}

namespace {
json cervical() {
  return json::parse(R"({
    "name": "cervical-lateral",
    "corners": ["sup_ant", "sup_post", "inf_post", "inf_ant"],
    "vertebrae": ["C2", "C3", "C4", "C5", "C6", "C7"],
    "endplates": [{"name": "superior", "from": "sup_post", "to": "sup_ant"},
                  {"name": "inferior", "from": "inf_post", "to": "inf_ant"}],
    "walls": [{"name": "anterior", "from": "sup_ant", "to": "inf_ant"}],
    "frame": "anterior_positive",
    "angles": [{"type": "endplate_difference", "name": "C2_C7", "first": "C2.inferior", "second": "C7.inferior"}]
  })");
}
}  // namespace

TEST_CASE("a user schema from a file, registered by name") {
  const std::string path = std::filesystem::temp_directory_path() / "spinemark_test_cervical.json";
  file_write_atomic(path, cervical().dump());
  const Schema s = schema_load(path);
  CHECK(s.landmark_count() == 24);
  CHECK(s.angles == std::vector<std::string>{"C2_C7"});
  CHECK_THROWS_AS(schema_lookup("cervical-lateral"), Error);
  schema_register(s);
  CHECK(schema_lookup("cervical-lateral").landmark_count() == 24);
  std::filesystem::remove(path);
}

TEST_CASE("bad schemas give errors naming the problem") {
  auto bad = [](const std::function<void(json&)>& edit, const char* expect) {
    json j = cervical();
    edit(j);
    CHECK_THROWS_WITH_AS(schema_from_json(j), doctest::Contains(expect), Error);
  };
  bad([](json& j) { j["vertebras"] = 1; }, "unknown key 'vertebras'");
  bad([](json& j) { j["vertebrae"].push_back("C3"); }, "'C3' appears twice");
  bad([](json& j) { j["vertebrae"] = json::array(); }, "'vertebrae' must be a non-empty array");
  bad([](json& j) { j["endplates"][0]["to"] = "front"; }, "names a corner no vertebra has");
  bad([](json& j) { j["angles"][0]["type"] = "cobb"; }, "unknown angle type 'cobb'");
  bad([](json& j) { j["angles"][0]["first"] = "C1.inferior"; }, "unknown vertebra");
  bad([](json& j) { j["angles"][0]["first"] = "C2.middle"; }, "unknown endplate");
  bad([](json& j) { j["flip"]["swap_corners"] = json::array({json::array({"sup_ant", "left"})}); }, "unknown corner 'left'");
  bad([](json& j) { j["frame"] = "patient"; }, "'frame' must be");
  bad([](json& j) { j.erase("name"); }, "'name' must be a string");
  const std::string path = std::filesystem::temp_directory_path() / "spinemark_test_bad_schema.json";
  file_write_atomic(path, "{\"name\": ");
  CHECK_THROWS_WITH_AS(schema_load(path), doctest::Contains("not valid JSON"), Error);
  std::filesystem::remove(path);
}

TEST_CASE("a missing schema file is named as missing, not as an unknown schema") {
  CHECK_THROWS_WITH_AS(schema_load("/nonexistent/cervical.json"),
                       doctest::Contains("/nonexistent/cervical.json: the schema file does not exist"), Error);
  CHECK_THROWS_WITH_AS(schema_load("cervical.json"), doctest::Contains("the schema file does not exist"), Error);
  CHECK_THROWS_WITH_AS(schema_load("cervical-lateral-x"), doctest::Contains("unknown schema"), Error);  // a name
}

TEST_CASE("annotation round trip and errors") {
  const Schema& s = schema_builtin("lumbar-lateral");
  json j = {{"image", "x.png"},
            {"schema", "lumbar-lateral"},
            {"pixel_spacing_mm", {0.15, 0.2}},
            {"landmarks", {{"L1.sup_ant", {10.5, 20.25}}, {"S1.sup_post", {30, 40}}, {"L2.inf_ant", {1, 2}}}},
            {"visible", {{"L2.inf_ant", false}}},
            {"femoral_heads", {{1, 2}, {3, 4}}}};
  const Annotation a = annotation_from_json(j, s);
  CHECK(a.points[0][0] == 10.5);
  CHECK(a.visible[0]);
  CHECK(std::isnan(a.points[1][0]));  // absent
  CHECK_FALSE(a.visible[1]);
  CHECK_FALSE(a.visible[size_t(s.landmark_index("L2.inf_ant"))]);
  CHECK((*a.pixel_spacing_mm)[1] == 0.2);
  CHECK(a.extra["femoral_heads"][1][0] == 3);
  // Written back: the same keys; `visible` listed in full once any landmark is hidden.
  json back = annotation_to_json(a, s);
  CHECK(back["visible"]["L2.inf_ant"] == false);
  CHECK(back["visible"]["L1.sup_ant"] == true);
  back["visible"] = j["visible"];
  CHECK(back == j);

  const std::string path = std::filesystem::temp_directory_path() / "spinemark_test_annotation.json";
  annotation_write(path, a, s);
  const Annotation r = annotation_read(path);
  CHECK(annotation_to_json(r, s) == annotation_to_json(a, s));
  CHECK(r.visible == a.visible);
  std::filesystem::remove(path);

  json n = j;
  n["pixel_spacing_mm"] = nullptr;
  n.erase("visible");
  const Annotation b = annotation_from_json(n, s);
  CHECK_FALSE(b.pixel_spacing_mm.has_value());
  CHECK(b.visible[size_t(s.landmark_index("L2.inf_ant"))]);  // all true when absent
  CHECK(annotation_to_json(b, s)["pixel_spacing_mm"].is_null());

  auto bad = [&](const std::function<void(json&)>& edit, const char* expect) {
    json k = j;
    edit(k);
    CHECK_THROWS_WITH_AS(annotation_from_json(k, s), doctest::Contains(expect), Error);
  };
  bad([](json& k) { k["landmarks"]["L6.sup_ant"] = {1, 2}; }, "'L6.sup_ant' is not in schema");
  bad([](json& k) { k["landmarks"]["L1.sup_ant"] = {1}; }, "must be [x, y]");
  bad([](json& k) { k["pixel_spacing_mm"] = {0.1}; }, "pixel_spacing_mm");
  bad([](json& k) { k["schema"] = "aasce-ap"; }, "read with 'lumbar-lateral'");
  bad([](json& k) { k["visible"]["L1.sup_ant"] = 1; }, "must be true or false");
}
