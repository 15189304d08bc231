// `spinemark predict` end to end: a tiny untrained model (the outputs' format is checked, not their
// accuracy), a folder with a corrupt image, --resume, --shard, a missing weight file, a user
// schema, colliding names and bad options (what the outputs guarantee: test_predict_trust.cpp). Runs the program built next to this test.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "models/nets/spine_model.h"
#include "models/pipeline/predict_run.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "predict_fixture.h"
#include "test_support.h"
#include "models/image/image_io.h"
#include "models/pipeline/prediction_overlay.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

using test::film_write;
using test::RunResult;
using test::spec_tiny;
using test::spinemark_run;

// The status field of a summary row that starts with `image,` ("" when it does not).
std::string row_status(const std::string& row, const std::string& image) {
  if (row.compare(0, image.size() + 1, image + ",") != 0) return "";
  const size_t from = image.size() + 1;
  return row.substr(from, row.find(',', from) - from);
}

// An untrained model's verdict on a film may be any of the three; predicting it is no error.
bool verdict_status(const std::string& status) { return status == "ok" || status == "review" || status == "rejected"; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A folder with a model, three films and a corrupt one, shared by the cases below.
struct Fixture {
  test::TempDir dir{"predict_cli"};
  std::string model = dir.file("model"), data = dir.file("data");
  Fixture() {
    spine_model_save(model, spine_model_create(spec_tiny(schema_builtin("lumbar-lateral")), 1));
    fs::create_directories(data);
    for (int k = 0; k < 3; ++k) film_write(data + "/f" + std::to_string(k) + ".png", 120 + 10 * k, 100, k);
    std::ofstream(data + "/bad.png") << "not an image";
    std::ofstream(data + "/f0.json") << "{}";  // an annotation: not an input
  }
};

}  // namespace

TEST_CASE("predict: a corrupt image is reported and skipped, the others are written, --resume completes") {
  Fixture fx;
  const std::string out = fx.dir.file("out");
  RunResult r = spinemark_run(fx.dir, "predict --model " + fx.model + " --data " + fx.data + " --out " + out + " --threads 1");
  INFO("stderr: " << r.err);
  CHECK(r.rc != 0);
  CHECK(r.err.find("spinemark predict: " + fx.data + "/bad.png: ") != std::string::npos);
  CHECK(r.err.find("predicted 3 images (1 errors)") != std::string::npos);
  for (const char* stem : {"f0", "f1", "f2"}) {
    const auto j = nlohmann::json::parse(file_read_all(out + "/" + stem + ".json"));
    CHECK(j["schema"] == "lumbar-lateral");
    CHECK(j["image"] == fx.data + "/" + stem + ".png");  // absolute inputs stay absolute
    CHECK(j["landmarks"].size() == 22);
    CHECK(fs::exists(out + "/" + stem + ".png"));
  }
  CHECK(image_read(out + "/f1.png").width == 130 + prediction_overlay_margin_width(130, 100));
  CHECK(!fs::exists(out + "/bad.json"));
  CHECK(!fs::exists(out + "/bad.png"));
  auto csv = lines_of(file_read_all(out + "/summary.csv"));
  REQUIRE(csv.size() == 5);
  CHECK(csv[0] == "image,status,L1_L5_lordosis,L1_S1_lordosis,sacral_slope,flags,ms,error");
  CHECK(csv[1].find(fx.data + "/bad.png,error,") == 0);
  CHECK(verdict_status(row_status(csv[2], fx.data + "/f0.png")));

  // Resume: f0 is kept as it is, f1 (removed) is predicted again, and so is f2, whose file is an
  // incomplete prediction (said so on stderr); the summary is whole.
  const std::string f0_before = file_read_all(out + "/f0.json");
  fs::remove(out + "/f1.json");
  std::ofstream(out + "/f2.json") << "{\"written_by\": \"spinemark predict\", \"schema\": \"lumbar-lateral\", "
                                     "\"landmarks\": {}, \"flags\": [\"x\"]}";
  r = spinemark_run(fx.dir, "predict --model " + fx.model + " --data " + fx.data + " --out " + out +
                                " --resume --no-overlay");
  CHECK(r.err.find("predicted 2 images (1 errors, 1 resumed)") != std::string::npos);
  CHECK(r.err.find(out + "/f2.json: not kept (") != std::string::npos);
  CHECK(file_read_all(out + "/f0.json") == f0_before);
  CHECK(fs::exists(out + "/f1.json"));
  CHECK(nlohmann::json::parse(file_read_all(out + "/f2.json"))["landmarks"].size() == 22);
  csv = lines_of(file_read_all(out + "/summary.csv"));
  REQUIRE(csv.size() == 5);
  CHECK(verdict_status(row_status(csv[3], fx.data + "/f1.png")));
  // f2's bare file was no prediction of this film by this model: predicted again, with a verdict.
  CHECK(verdict_status(row_status(csv[4], fx.data + "/f2.png")));
}

TEST_CASE("predict_run (the library call behind the command): counts, progress per image, errors, resume") {
  Fixture fx;
  PredictOptions o;
  o.model = fx.model, o.data = fx.data, o.out = fx.dir.file("lib_out"), o.threads = 1;
  std::vector<PredictProgress> seen;
  PredictRunResult r = predict_run(o, [&](const PredictProgress& p) { seen.push_back(p); });
  CHECK(r.total == 4);
  CHECK(r.predicted == 3);
  CHECK(r.errors == 1);
  CHECK(r.resumed == 0);
  CHECK(r.summary_path == o.out + "/summary.csv");
  CHECK(fs::exists(r.summary_path));
  REQUIRE(seen.size() == 4);  // once per image, in input order
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].done == int(i) + 1);
    CHECK(seen[i].total == 4);
  }
  CHECK(seen[0].image == fx.data + "/bad.png");
  CHECK(!seen[0].error.empty());
  CHECK(seen[0].errors == 1);
  CHECK(predict_error_text(seen[0].image, seen[0].error).find(fx.data + "/bad.png: ") == 0);
  CHECK(seen[1].error.empty());
  CHECK(seen.back().predicted == 3);
  for (const char* stem : {"f0", "f1", "f2"}) CHECK(fs::exists(o.out + "/" + stem + ".json"));

  // Resume, a shard, no callback: the kept predictions count as resumed.
  fs::remove(o.out + "/f1.json");
  o.resume = true;
  r = predict_run(o);
  CHECK(r.predicted == 1);
  CHECK(r.resumed == 2);
  CHECK(r.errors == 1);
  o.shard = "2/2";
  r = predict_run(o);
  CHECK(r.total == 2);
  CHECK(r.summary_path == o.out + "/summary-2-of-2.csv");

  // A bad option throws before any image.
  o.manifest = fx.data + "/list.txt";
  CHECK_THROWS_AS(predict_run(o), Error);
}

TEST_CASE("predict: shards 1/2 and 2/2 of an image list write every image once") {
  Fixture fx;
  const std::string out = fx.dir.file("out");
  const std::string images = fx.data + "/f2.png " + fx.data + "/f0.png " + fx.data + "/f1.png";
  for (const char* shard : {"1/2", "2/2"}) {
    const RunResult r = spinemark_run(fx.dir, "predict --model " + fx.model + " --image " + images + " --out " + out +
                                                  " --no-overlay --shard " + shard);
    INFO("stderr: " << r.err);
    CHECK(r.rc == 0);
  }
  std::multiset<std::string> rows;
  for (const char* name : {"summary-1-of-2.csv", "summary-2-of-2.csv"}) {
    const auto csv = lines_of(file_read_all(out + "/" + name));
    for (size_t i = 1; i < csv.size(); ++i) rows.insert(csv[i].substr(0, csv[i].find(',')));
  }
  CHECK(rows == std::multiset<std::string>{fx.data + "/f0.png", fx.data + "/f1.png", fx.data + "/f2.png"});
  CHECK(lines_of(file_read_all(out + "/summary-1-of-2.csv")).size() == 3);  // f0, f2
  for (const char* stem : {"f0", "f1", "f2"}) CHECK(fs::exists(out + "/" + stem + ".json"));
  CHECK(!fs::exists(out + "/f0.png"));
}

TEST_CASE("predict: a missing weight file, colliding names and bad options fail before any output") {
  Fixture fx;
  const std::string broken = fx.dir.file("broken");
  fs::copy(fx.model, broken);
  fs::remove(broken + "/refine.safetensors");
  RunResult r = spinemark_run(fx.dir, "predict --model " + broken + " --data " + fx.data + " --out " + fx.dir.file("o1"));
  CHECK(r.rc != 0);
  CHECK(r.err.find("refine.safetensors") != std::string::npos);
  CHECK(!fs::exists(fx.dir.file("o1")));

  fs::copy_file(fx.data + "/f1.png", fx.dir.file("f1.png"));
  fs::copy_file(fx.data + "/f1.png", fx.dir.file("f1.bmp"));
  r = spinemark_run(fx.dir, "predict --model " + fx.model + " --image " + fx.dir.file("f1.png") + " " + fx.dir.file("f1.bmp") +
                                " --out " + fx.dir.file("o2"));
  CHECK(r.rc != 0);
  CHECK(r.err.find("same output name 'f1'") != std::string::npos);
  CHECK(!fs::exists(fx.dir.file("o2")));

  for (const char* bad : {"--threads 0", "--threads 300", "--shard 3/2", "--shard x", "--device tpu"}) {
    r = spinemark_run(fx.dir, "predict --model " + fx.model + " --data " + fx.data + " --out " + fx.dir.file("o3") + " " + bad);
    INFO(bad << " stderr: " << r.err);
    CHECK(r.rc != 0);
    CHECK(!fs::exists(fx.dir.file("o3")));
  }
  r = spinemark_run(fx.dir, "predict --model " + fx.model + " --data " + fx.data + " --out " + fx.data);
  CHECK(r.rc != 0);
  CHECK(r.err.find("input image would be overwritten") != std::string::npos);
}

TEST_CASE("predict: a model of a user schema (cervical) needs no schema file") {
  Fixture fx;
  const Schema cervical = schema_from_json(nlohmann::json::parse(R"json({
    "name": "cervical-test",
    "corners": ["sup_ant", "sup_post", "inf_post", "inf_ant"],
    "vertebrae": ["C3", "C4", "C5", "C6"],
    "endplates": [{"name": "superior", "from": "sup_post", "to": "sup_ant"},
                  {"name": "inferior", "from": "inf_post", "to": "inf_ant"}],
    "walls": [{"name": "anterior", "from": "sup_ant", "to": "inf_ant"},
              {"name": "posterior", "from": "sup_post", "to": "inf_post"}],
    "frame": "anterior_positive",
    "flip": {"swap_corners": []},
    "angles": [{"type": "endplate_difference", "name": "C3_C6_lordosis", "first": "C3.superior", "second": "C6.inferior"}]
  })json"));
  const std::string model = fx.dir.file("cervical");
  spine_model_save(model, spine_model_create(spec_tiny(cervical), 2));
  const std::string out = fx.dir.file("out");
  const RunResult r = spinemark_run(fx.dir, "predict --model " + model + " --image " + fx.data + "/f1.png --out " + out);
  INFO("stderr: " << r.err);
  CHECK(r.rc == 0);
  const auto j = nlohmann::json::parse(file_read_all(out + "/f1.json"));
  CHECK(j["schema"] == "cervical-test");
  CHECK(j["landmarks"].size() == 16);
  CHECK(j["landmarks"].contains("C6.inf_ant"));
  CHECK(j["angles"].contains("C3_C6_lordosis"));
  CHECK(lines_of(file_read_all(out + "/summary.csv"))[0] == "image,status,C3_C6_lordosis,flags,ms,error");
}

TEST_CASE("bench: repetition counts of 0 or below are refused at parse time, naming the option (no crash)") {
  test::TempDir dir("bench_cli");
  for (const char* args : {"--conv-reps 0", "--steps 0", "--infer-reps 0", "--warmup -1", "--threads 0"}) {
    CAPTURE(args);
    const RunResult r = spinemark_run(dir, std::string("bench --model convs ") + args);
    CHECK(r.rc > 0);  // a clean error exit; a crash has no exit code (rc -1)
    CHECK(r.err.find(std::string(args).substr(0, std::string(args).find(' '))) != std::string::npos);
  }
}

TEST_CASE("the program's OpenMP threads sleep at barriers unless the user chose a wait policy") {
  test::TempDir dir("wait_policy");
  const std::string out_file = dir.file("stdout.txt"), exe = std::string(SPINEMARK_BINARY_DIR) + "/spinemark";
  auto policy_line = [&](const std::string& env) {
    const int status = std::system(("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + env + " " + exe + " version >" + out_file).c_str());
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const std::string text = file_read_all(out_file);
    const size_t at = text.find("OpenMP wait  : ");
    REQUIRE(at != std::string::npos);
    return text.substr(at + 15, text.find(' ', at + 15) - (at + 15));
  };
  CHECK(policy_line("") == "passive");
  CHECK(policy_line("OMP_WAIT_POLICY=active") == "active");
  CHECK(policy_line("GOMP_SPINCOUNT=1000") == "spincount=1000");
}

TEST_CASE("bench --model pipeline: a smoke run prints one record per inference mode with a time per stage") {
  test::TempDir dir("bench_pipeline");
  const std::string out_file = dir.file("stdout.txt");
  const int status = std::system((std::string(SPINEMARK_BINARY_DIR) +
                                  "/spinemark bench --model pipeline --infer-reps 1 --warmup 0 --threads 1 >" + out_file)
                                     .c_str());
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  std::istringstream lines(file_read_all(out_file));
  std::string line;
  std::set<std::string> modes;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    CHECK(j.at("bench") == "pipeline");
    modes.insert(j.at("model").get<std::string>());
    CHECK(j.at("median_s").get<double>() > 0);
    for (const char* stage : {"detect", "coarse", "refine", "total"}) CHECK(j.at("stages_median_ms").contains(stage));
    CHECK(j.at("film") == nlohmann::json::array({2000, 1000}));
  }
  CHECK(modes == std::set<std::string>{"pipeline", "pipeline_1pass"});
}
