// Dataset format (issue 3): a folder of annotation JSON files or a JSON-lines manifest; paths
// resolve relative to the annotation, and bad entries give errors naming the file and line.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "test_support.h"

#include <filesystem>
#include <unistd.h>

#include "tensor/check.h"
#include "tensor/file_io.h"
#include "train/data/dataset.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {
// Scratch folders live until the program ends (removed then, with their contents).
fs::path temp_dir(const std::string& name) {
  static std::vector<std::unique_ptr<test::TempDir>> dirs;
  dirs.push_back(std::make_unique<test::TempDir>(name));
  return dirs.back()->path();
}
std::string annotation(const std::string& image) {
  return R"({"image": ")" + image + R"(", "schema": "lumbar-lateral", "pixel_spacing_mm": null,
             "landmarks": {"L1.sup_ant": [1, 2]}})";
}
}  // namespace

TEST_CASE("dataset folder and manifest") {
  const fs::path d = temp_dir("dataset");
  file_write_atomic((d / "b.png").string(), "x");
  file_write_atomic((d / "a.png").string(), "x");
  file_write_atomic((d / "b.json").string(), annotation("b.png"));
  file_write_atomic((d / "a.json").string(), annotation(""));  // empty image: same stem
  auto e = dataset_list(d.string());
  REQUIRE(e.size() == 2);
  CHECK(fs::path(e[0].image_path).filename() == "a.png");  // sorted by name
  CHECK(fs::path(e[1].image_path).filename() == "b.png");
  CHECK(e[1].annotation.points[0][1] == 2);

  file_write_atomic((d / "list.jsonl").string(), annotation("a.png") + "\n\n" + annotation("b.png") + "\n");
  // The manifest holds JSON with newlines inside; write it line by line instead.
  nlohmann::json one = nlohmann::json::parse(annotation("a.png"));
  file_write_atomic((d / "list.jsonl").string(), one.dump() + "\n\n" + one.dump() + "\n");
  CHECK(dataset_list((d / "list.jsonl").string()).size() == 2);
  one["landmarks"]["L9.x"] = {1, 2};
  file_write_atomic((d / "bad.jsonl").string(), nlohmann::json::parse(annotation("a.png")).dump() + "\n" + one.dump() + "\n");
  CHECK_THROWS_WITH_AS(dataset_list((d / "bad.jsonl").string()), doctest::Contains("bad.jsonl:2"), Error);
  file_write_atomic((d / "broken.jsonl").string(), "{\n");
  CHECK_THROWS_WITH_AS(dataset_list((d / "broken.jsonl").string()), doctest::Contains("broken.jsonl:1: not valid JSON"), Error);

  file_write_atomic((d / "c.json").string(), annotation("missing.png"));
  CHECK_THROWS_WITH_AS(dataset_list(d.string()), doctest::Contains("missing.png' does not exist"), Error);
  DatasetOptions lax;
  lax.check_images_exist = false;
  CHECK(dataset_list(d.string(), lax).size() == 3);
  fs::remove(d / "c.json");
  file_write_atomic((d / "c.json").string(), R"({"image": "a.png", "schema": "aasce-ap", "landmarks": {}})");
  CHECK_THROWS_WITH_AS(dataset_list(d.string()), doctest::Contains("one dataset, one schema"), Error);
  file_write_atomic((d / "c.json").string(), "[1, 2");
  CHECK_THROWS_WITH_AS(dataset_list(d.string()), doctest::Contains("c.json: not valid JSON"), Error);

  const fs::path empty = temp_dir("dataset_empty");
  CHECK_THROWS_WITH_AS(dataset_list(empty.string()), doctest::Contains("holds no annotations"), Error);
  CHECK_THROWS_WITH_AS(dataset_list((d / "nope").string()), doctest::Contains("does not exist"), Error);
  fs::remove_all(d);
  fs::remove_all(empty);
}
