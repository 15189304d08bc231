// What `spinemark predict`'s outputs guarantee (docs/reliability.md, "Predict: what the outputs
// guarantee"): it never writes over a file it did not write, one run at a time per folder (or
// shard), --resume keeps only complete predictions of the same file by the same model, and
// every entry of --data that is not predicted is named with a reason. Tiny untrained models and
// films made here; runs the program built next to this test and the library call.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "models/image/image_io.h"
#include "models/nets/spine_model.h"
#include "models/pipeline/predict_inputs.h"
#include "models/pipeline/predict_run.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "predict_fixture.h"
#include "test_support.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

using test::film_write;
using test::RunResult;
using test::spec_tiny;
using test::spinemark_run;

// A model and a folder of three films.
struct Fixture {
  test::TempDir dir;
  std::string model = dir.file("model"), data = dir.file("data");
  explicit Fixture(const std::string& name) : dir(name) {
    spine_model_save(model, spine_model_create(spec_tiny(schema_builtin("lumbar-lateral")), 1));
    fs::create_directories(data);
    for (int k = 0; k < 3; ++k) film_write(data + "/f" + std::to_string(k) + ".png", 90 + 10 * k, 80, k);
  }
  PredictOptions options(const std::string& out) const {
    PredictOptions o;
    o.model = model, o.data = data, o.out = out, o.threads = 1, o.no_overlay = true;
    return o;
  }
  std::string predict_args(const std::string& out) const {
    return "predict --model " + model + " --data " + data + " --out " + out + " --threads 1";
  }
};

// Holds an flock on `path` (as another predict run would), with our pid in the file.
struct HeldLock {
  int fd;
  HeldLock(const std::string& path, int op) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, op | LOCK_NB) == 0);
    const std::string pid = std::to_string(::getpid()) + "\n";
    REQUIRE(::pwrite(fd, pid.data(), pid.size(), 0) == ssize_t(pid.size()));
  }
  ~HeldLock() { ::close(fd); }
};

}  // namespace

TEST_CASE("predict never writes over an annotation or another file it did not write; refuses before any film") {
  Fixture fx("predict_trust_foreign");
  const std::string ann = fx.dir.file("annotations");  // an imported annotation folder: f1.json is ground truth
  fs::create_directories(ann);
  const std::string truth = "{\"image\": \"f1.png\", \"schema\": \"lumbar-lateral\", \"landmarks\": {}}\n";
  std::ofstream(ann + "/f1.json") << truth;
  for (const char* extra : {"", " --resume"}) {
    const RunResult r = spinemark_run(fx.dir, fx.predict_args(ann) + extra);
    INFO("stderr: " << r.err);
    CHECK(r.rc != 0);
    CHECK(r.err.find(ann + "/f1.json: exists and was not written by spinemark predict") != std::string::npos);
    CHECK(file_read_all(ann + "/f1.json") == truth);
    CHECK(!fs::exists(ann + "/f0.json"));  // refused at the start: no film computed
    CHECK(!fs::exists(ann + "/summary.csv"));
  }

  // A picture where an overlay would go is not replaced either; with --no-overlay it stays aside.
  fs::remove(ann + "/f1.json");
  film_write(ann + "/f2.png", 30, 30, 7);
  const std::string picture = file_read_all(ann + "/f2.png");
  RunResult r = spinemark_run(fx.dir, fx.predict_args(ann));
  CHECK(r.rc != 0);
  CHECK(r.err.find(ann + "/f2.png: exists and was not written by spinemark predict") != std::string::npos);
  CHECK(file_read_all(ann + "/f2.png") == picture);
  r = spinemark_run(fx.dir, fx.predict_args(ann) + " --no-overlay");
  CHECK(r.rc == 0);
  CHECK(file_read_all(ann + "/f2.png") == picture);

  // predict's own outputs (JSON and overlays) are known as its own: a second run writes over them.
  const std::string out = fx.dir.file("out");
  r = spinemark_run(fx.dir, fx.predict_args(out));
  REQUIRE(r.rc == 0);
  const auto j = nlohmann::json::parse(file_read_all(out + "/f0.json"));
  CHECK(j["written_by"] == "spinemark predict");
  CHECK(file_read_all(out + "/f0.json").find("{\n  \"written_by\": \"spinemark predict\",") == 0);  // the mark first
  r = spinemark_run(fx.dir, fx.predict_args(out));
  INFO("stderr: " << r.err);
  CHECK(r.rc == 0);
  CHECK(image_read(out + "/f1.png").width > 100);  // the marked overlay (film + verdict margin) still reads as a PNG
}

TEST_CASE("predict: one run per output folder; shards each hold their own lock and run side by side") {
  Fixture fx("predict_trust_lock");
  const std::string out = fx.dir.file("out");
  fs::create_directories(out);
  {
    HeldLock other(out + "/" + kPredictLockFile, LOCK_EX);
    const RunResult r = spinemark_run(fx.dir, fx.predict_args(out));
    INFO("stderr: " << r.err);
    CHECK(r.rc != 0);
    CHECK(r.err.find(out + ": another spinemark predict (pid " + std::to_string(::getpid()) + ")") != std::string::npos);
    CHECK(!fs::exists(out + "/f0.json"));
  }
  {
    // Shard 1/2 runs elsewhere: shard 2/2 goes on beside it; a second 1/2 and a whole run are refused.
    HeldLock folder(out + "/" + kPredictLockFile, LOCK_SH);
    HeldLock shard(out + "/.spinemark-predict-1-of-2.lock", LOCK_EX);
    RunResult r = spinemark_run(fx.dir, fx.predict_args(out) + " --shard 2/2");
    CHECK(r.rc == 0);
    CHECK(fs::exists(out + "/summary-2-of-2.csv"));
    r = spinemark_run(fx.dir, fx.predict_args(out) + " --shard 1/2");
    CHECK(r.rc != 0);
    CHECK(r.err.find("as shard 1/2") != std::string::npos);
    r = spinemark_run(fx.dir, fx.predict_args(out));
    CHECK(r.rc != 0);
    CHECK(r.err.find("another spinemark predict") != std::string::npos);
  }
  CHECK(spinemark_run(fx.dir, fx.predict_args(out)).rc == 0);  // free again
}

TEST_CASE("predict --resume keeps only complete predictions of the same file by the same model") {
  Fixture fx("predict_trust_resume");
  const std::string out = fx.dir.file("out");
  PredictOptions o = fx.options(out);
  PredictRunResult r = predict_run(o);
  REQUIRE(r.predicted == 3);
  const auto first = nlohmann::json::parse(file_read_all(out + "/f0.json"));
  CHECK(first["model"]["id"] == predict_model_id(fx.model));
  CHECK(first["input"]["path"] == fs::canonical(fx.data + "/f0.png").string());
  CHECK(first["input"]["size"] == fs::file_size(fx.data + "/f0.png"));
  o.resume = true;
  r = predict_run(o);
  CHECK(r.resumed == 3);
  CHECK(r.predicted == 0);

  // A same-named film of another folder is another input.
  const std::string other = fx.dir.file("other");
  fs::create_directories(other);
  film_write(other + "/f0.png", 70, 70, 5);
  PredictOptions o2 = o;
  o2.data = other;
  std::vector<std::string> notes;
  r = predict_run(o2, [&](const PredictProgress& p) { notes.push_back(p.note); });
  CHECK(r.predicted == 1);
  CHECK(r.resumed == 0);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("a prediction of another file") != std::string::npos);
  CHECK(nlohmann::json::parse(file_read_all(out + "/f0.json"))["input"]["path"] == fs::canonical(other + "/f0.png").string());
  r = predict_run(o);  // and back: f0 again, f1 and f2 kept
  CHECK(r.predicted == 1);
  CHECK(r.resumed == 2);

  // A film changed in place (same path, new content and time) is predicted again.
  film_write(fx.data + "/f1.png", 95, 80, 9);
  fs::last_write_time(fx.data + "/f1.png", fs::last_write_time(fx.data + "/f1.png") + std::chrono::seconds(5));
  r = predict_run(o);
  CHECK(r.predicted == 1);
  CHECK(r.resumed == 2);

  // Another model's predictions are not this one's.
  const std::string model2 = fx.dir.file("model2");
  spine_model_save(model2, spine_model_create(spec_tiny(schema_builtin("lumbar-lateral")), 2));
  PredictOptions o3 = o;
  o3.model = model2;
  r = predict_run(o3);
  CHECK(r.predicted == 3);
  CHECK(r.resumed == 0);
  CHECK(nlohmann::json::parse(file_read_all(out + "/f2.json"))["model"]["id"] == predict_model_id(model2));
  CHECK(predict_model_id(model2) != predict_model_id(fx.model));

  // Damaged predictions (marked as predict's, so not refused) are each predicted again and said so.
  o3.images = {fx.data + "/f0.png"}, o3.data.clear();
  r = predict_run(o3);
  REQUIRE(r.resumed == 1);
  const std::string good = file_read_all(out + "/f0.json");
  const nlohmann::json valid = nlohmann::json::parse(good);
  std::vector<std::string> damaged;
  for (const auto& [key, value] : valid.items()) {
    if (key == "written_by" || key == "pixel_spacing_mm" || key == "visible" || key == "step1_centres" ||
        key == "step1_angles" || key == "image_size" || key == "confidence_mm")
      continue;  // without the mark the file is not predict's (refused, case above); the others --resume does not need
    nlohmann::json j = valid;
    j.erase(key);
    damaged.push_back(j.dump());
    for (const nlohmann::json& bad : {nlohmann::json(), nlohmann::json(5), nlohmann::json("x"), nlohmann::json::array()}) {
      if (bad.type() == value.type()) continue;  // "image": "x" and "flags": [] are well-formed
      j = valid;
      j[key] = bad;
      damaged.push_back(j.dump());
    }
  }
  for (const char* key : {"landmarks", "step1_landmarks", "confidence", "angles"}) {
    nlohmann::json j = valid;
    j[key].erase(j[key].begin().key());
    damaged.push_back(j.dump());
    j = valid;
    j[key][j[key].begin().key()] = "x";
    damaged.push_back(j.dump());
  }
  {
    nlohmann::json j = valid;
    j["landmarks"][j["landmarks"].begin().key()] = {1.0};
    damaged.push_back(j.dump());
    j = valid;
    j["flags"] = {1};
    damaged.push_back(j.dump());
    j = valid;
    j["input"]["mtime_ns"] = j["input"]["mtime_ns"].get<int64_t>() + 1;
    damaged.push_back(j.dump());
  }
  for (size_t cut = 40; cut < good.size(); cut += good.size() / 12) damaged.push_back(good.substr(0, cut));
  CHECK(damaged.size() > 40);
  for (size_t i = 0; i < damaged.size(); ++i) {
    const std::string& text = damaged[i];
    CAPTURE(i);
    CAPTURE(text.substr(0, 300));
    file_write_atomic(out + "/f0.json", text);
    std::string note;
    r = predict_run(o3, [&](const PredictProgress& p) { note = p.note; });
    CHECK(r.predicted == 1);
    CHECK(r.resumed == 0);
    CHECK(note.find("f0.json: not kept (") != std::string::npos);
  }
  r = predict_run(o3);
  CHECK(r.resumed == 1);
}

TEST_CASE("predict --data names what it skips, walks sub-folders, and names outputs by the relative path") {
  Fixture fx("predict_trust_listing");
  const std::string d = fx.data;
  film_write(d + "/A.PNG", 80, 80, 3);  // upper-case extension: a film
  fs::create_symlink(d + "/gone.png", d + "/dangling.png");
  fs::create_symlink(d + "/loop2.png", d + "/loop1.png");
  fs::create_symlink(d + "/loop1.png", d + "/loop2.png");
  REQUIRE(::mkfifo((d + "/pipe.png").c_str(), 0644) == 0);
  fs::create_directories(d + "/folder.png");
  std::ofstream(d + "/scan.tif") << "tiff";
  std::ofstream(d + "/README") << "notes\n";
  // A per-patient archive: every film has the same name, each in its own folder.
  for (const char* patient : {"patient1", "patient2"}) {
    fs::create_directories(d + "/" + patient);
    film_write(d + "/" + patient + "/IM0001.png", 80, 90, patient[7] - '0');
  }
  const std::string out = d + "/predictions";  // inside --data: left out of the inputs
  PredictRunResult r = predict_run(fx.options(out));
  CHECK(r.predicted == 6);  // f0 f1 f2 A patient1/IM0001 patient2/IM0001
  CHECK(r.errors == 0);
  std::map<std::string, std::string> skipped;
  for (const auto& s : r.skipped) skipped[fs::path(s.path).lexically_relative(d).string()] = s.reason;
  CHECK(skipped["dangling.png"].find("broken symbolic link") != std::string::npos);
  CHECK(skipped["loop1.png"].find("symbolic link loop") != std::string::npos);
  CHECK(skipped["loop2.png"].find("symbolic link loop") != std::string::npos);
  CHECK(skipped["pipe.png"].find("FIFO") != std::string::npos);
  CHECK(skipped["scan.tif"].find("extension .tif") != std::string::npos);
  CHECK(skipped["README"].find("no extension") != std::string::npos);
  CHECK(skipped.size() == 6);  // the empty folder.png is walked, predictions/ did not exist yet
  for (const char* name : {"f0", "A", "patient1/IM0001", "patient2/IM0001"}) CHECK_MESSAGE(fs::exists(out + "/" + name + ".json"), name);
  const auto j = nlohmann::json::parse(file_read_all(out + "/patient2/IM0001.json"));
  CHECK(fs::equivalent(j["image"].get<std::string>(), d + "/patient2/IM0001.png"));  // "image" still resolves

  // The command prints them; a second run leaves its own output folder out and resumes both patients.
  const RunResult cli = spinemark_run(fx.dir, fx.predict_args(out) + " --resume --no-overlay");
  INFO("stderr: " << cli.err);
  CHECK(cli.rc == 0);
  CHECK(cli.err.find("6 resumed") != std::string::npos);
  CHECK(cli.err.find("skipped 1 entry: the output folder (--out)") != std::string::npos);
  CHECK(cli.err.find("skipped 1 entry: not a regular file (a FIFO)\n  " + d + "/pipe.png") != std::string::npos);
  CHECK(cli.err.find("skipped 2 entries: symbolic link loop") != std::string::npos);
  const auto csv = file_read_all(out + "/summary.csv");
  // A row with a film-level verdict (the tiny untrained model's films may be ok, review or rejected).
  const std::string row_start = d + "/patient1/IM0001.png,";
  const size_t row = csv.find(row_start);
  REQUIRE(row != std::string::npos);
  const size_t at = row + row_start.size();
  const std::string status = csv.substr(at, csv.find(',', at) - at);
  CHECK((status == "ok" || status == "review" || status == "rejected"));
  CHECK(csv.find("pipe.png") == std::string::npos);  // the summary holds the inputs only
}

TEST_CASE("predict: a file name that is not UTF-8 is written escaped and resumes; BOM manifests; shard overflow") {
  Fixture fx("predict_trust_names");
  const std::string raw = fx.data + "/r\xff\xfe" + "ntgen.png";  // Latin-1 bytes, not UTF-8
  fs::copy_file(fx.data + "/f1.png", raw);
  const std::string out = fx.dir.file("out");
  PredictOptions o = fx.options(out);
  o.data.clear(), o.images = {raw};
  PredictRunResult r = predict_run(o);
  REQUIRE(r.errors == 0);
  const std::string json_path = out + "/r\xff\xfe" + "ntgen.json";
  REQUIRE(fs::exists(json_path));
  const auto j = nlohmann::json::parse(file_read_all(json_path));  // valid UTF-8 JSON
  CHECK(j["image"] == fx.data + "/r\\xff\\xfentgen.png");
  CHECK(j["input"]["path_hex"] == predict_text_hex(fs::canonical(raw).string()));
  CHECK(predict_text_escaped("a\\b\xc3\xa9") == "a\\b\xc3\xa9");  // valid UTF-8 stays as it is
  CHECK(predict_text_escaped("a\\b\xe9") == "a\\\\b\\xe9");
  CHECK(!predict_text_is_utf8("\xed\xa0\x80"));  // a surrogate
  o.resume = true;
  r = predict_run(o);
  CHECK(r.resumed == 1);

  // A manifest with a UTF-8 byte-order mark (as Windows editors save it).
  std::ofstream(fx.dir.file("list.txt")) << "\xEF\xBB\xBF" << "data/f0.png\ndata/f2.png\n";
  const auto listed = predict_inputs_from_manifest(fx.dir.file("list.txt"));
  REQUIRE(listed.size() == 2);
  CHECK(listed[0] == fx.data + "/f0.png");
  std::ofstream(fx.dir.file("list.jsonl")) << "\xEF\xBB\xBF" << "{\"image\": \"data/f0.png\"}\n";
  CHECK(predict_inputs_from_manifest(fx.dir.file("list.jsonl")).size() == 1);

  // Shard numbers that overflow an int are refused, not wrapped.
  for (const char* bad : {"99999999999999999999/3", "4294967297/3", "1/4294967299", "1/3 ", "+1/3", "1/100001"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(predict_shard_parse(bad), Error);
  }
  CHECK(predict_shard_parse("000002/3").index == 2);
  const RunResult cli = spinemark_run(fx.dir, fx.predict_args(fx.dir.file("o")) + " --shard 4294967297/3");
  CHECK(cli.rc != 0);
  CHECK(cli.err.find("expected K/N") != std::string::npos);
  CHECK(!fs::exists(fx.dir.file("o")));
}

TEST_CASE("predict: an output folder that cannot be written is refused before any film") {
  Fixture fx("predict_trust_readonly");
  const std::string out = fx.dir.file("readonly");
  fs::create_directories(out);
  ::chmod(out.c_str(), 0555);
  // root ignores permissions: run the program as nobody then (the folder stays root's).
  const std::string prefix = ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  if (!prefix.empty() && spinemark_run(fx.dir, "version", prefix).rc != 0) {
    // The checkout lies where nobody may not go (e.g. under /root): the program cannot run as
    // nobody, and as root the folder would be writable. Nothing to test here.
    MESSAGE("skipped: the spinemark program cannot be run as user nobody from this checkout");
    ::chmod(out.c_str(), 0755);
    return;
  }
  const RunResult r = spinemark_run(fx.dir, fx.predict_args(out), prefix);
  INFO("stderr: " << r.err);
  CHECK(r.rc != 0);
  CHECK(r.err.find(out + ": the output folder cannot be written") != std::string::npos);
  CHECK(r.err.find("f0.png") == std::string::npos);  // no film was tried
  ::chmod(out.c_str(), 0755);
}
