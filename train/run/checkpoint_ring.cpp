// The checkpoint ring of a stage folder (see checkpoint_ring.h).
#include "train/run/checkpoint_ring.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "tensor/check.h"
#include "tensor/file_io.h"
#include "tensor/json_field.h"

namespace sm {

namespace fs = std::filesystem;

std::string CheckpointRing::latest() const {
  const std::string pointer = (fs::path(dir_) / "checkpoint.json").string();
  if (!file_exists(pointer)) return "";
  const nlohmann::json j = nlohmann::json::parse(file_read_all(pointer), nullptr, false);
  SM_CHECK(!j.is_discarded() && j.is_object(), pointer << ": not a checkpoint pointer");
  const std::string prefix = json_field_required<std::string>(j, "prefix", pointer);
  // Only a name this ring writes (ckpt-<digits>): an edited "../x" or "/abs" must not make the
  // run load (or later prune) files outside its stage folder.
  const bool ours = prefix.size() > 5 && prefix.compare(0, 5, "ckpt-") == 0 &&
                    std::all_of(prefix.begin() + 5, prefix.end(), [](char c) { return c >= '0' && c <= '9'; });
  SM_CHECK(ours, pointer << ": 'prefix' must name a checkpoint of this folder (ckpt-<step>), got '" << prefix << "'");
  return (fs::path(dir_) / prefix).string();
}

std::vector<std::string> CheckpointRing::resume_candidates() const {
  std::vector<std::string> out;
  const std::string first = latest();
  if (first.empty()) return out;
  out.push_back(first);
  std::vector<std::string> prefixes;
  for (const auto& f : fs::directory_iterator(dir_)) {
    const std::string n = f.path().filename().string();
    if (n.rfind("ckpt-", 0) == 0 && n.find(".tmp.") == std::string::npos) prefixes.push_back(n.substr(0, n.find('.')));
  }
  std::sort(prefixes.rbegin(), prefixes.rend());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  for (const auto& name : prefixes) {
    const std::string prefix = (fs::path(dir_) / name).string();
    const CheckpointPaths p = checkpoint_paths(prefix);
    if (prefix != first && file_exists(p.weights) && file_exists(p.state)) out.push_back(prefix);
  }
  return out;
}

void CheckpointRing::save(const Module& module, const Optimizer& optimizer, const TrainState& state) const {
  char name[32];
  std::snprintf(name, sizeof name, "ckpt-%09lld", (long long)state.step);
  checkpoint_save((fs::path(dir_) / name).string(), module, optimizer, state);
  // The pointer is replaced only once both files of the new pair are complete.
  file_write_atomic((fs::path(dir_) / "checkpoint.json").string(),
                    nlohmann::json{{"prefix", name}, {"step", state.step}}.dump() + "\n");
  prune();
}

// Removes all but the newest `keep_` pairs (names ckpt-<zero-padded step>.*, so that the names
// sort by step).
void CheckpointRing::prune() const {
  std::vector<std::string> prefixes;
  for (const auto& f : fs::directory_iterator(dir_)) {
    const std::string n = f.path().filename().string();
    if (n.rfind("ckpt-", 0) == 0) prefixes.push_back(n.substr(0, n.find('.')));
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  std::error_code ec;
  for (size_t k = 0; k + keep_ < prefixes.size(); ++k) {
    const CheckpointPaths p = checkpoint_paths((fs::path(dir_) / prefixes[k]).string());
    fs::remove(p.weights, ec);
    fs::remove(p.state, ec);
  }
}

void CheckpointRing::clear() const {
  std::vector<fs::path> stale;
  for (const auto& f : fs::directory_iterator(dir_)) {
    const std::string n = f.path().filename().string();
    if (n.rfind("ckpt", 0) == 0 || n == "checkpoint.json" || n == "best.safetensors" || n == "done.json") stale.push_back(f.path());
  }
  for (const auto& f : stale) fs::remove(f);
}

}  // namespace sm
