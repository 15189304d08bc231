// Checkpoint save/load (see checkpoint.h). RNG states and counters go in the state file's
// metadata as decimal/hex strings (bit-exact: uint64 words and the spare normal's bit pattern).
#include "train/run/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "layers/weights.h"
#include "tensor/file_io.h"

namespace sm {

namespace {

constexpr const char* kFormat = "spinemark.train_state";
constexpr const char* kFormatVersion = "1";

std::string hex64(uint64_t x) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(x));
  return buf;
}

std::string bytes_hash(const std::string& bytes) { return hex64(hash_string(bytes)); }

std::string basename_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const std::string& meta_get(const SafeTensorsFile& f, const std::string& source, const std::string& key) {
  auto it = f.metadata.find(key);
  SM_CHECK(it != f.metadata.end(), "'" << source << "': metadata '" << key << "' is missing (not a spinemark training-state file?)");
  return it->second;
}

uint64_t meta_u64(const SafeTensorsFile& f, const std::string& source, const std::string& key) {
  const std::string& s = meta_get(f, source, key);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  SM_CHECK(!s.empty() && s[0] != '-' && errno == 0 && end && *end == '\0',
           "'" << source << "': metadata '" << key << "' = '" << s << "' is not an unsigned integer");
  return uint64_t(v);
}

std::map<std::string, std::string> state_metadata(const Optimizer& optimizer, const TrainState& state,
                                                  const std::string& weights_path, const std::string& weights_bytes) {
  SM_CHECK(state.step >= 0 && state.epoch >= 0 && state.data_position >= 0,
           "checkpoint_save: step, epoch and data_position must be >= 0");
  SM_CHECK(nlohmann::json::accept(state.extra_json), "checkpoint_save: TrainState::extra_json is not valid JSON");
  std::map<std::string, std::string> m;
  m["format"] = kFormat;
  m["format_version"] = kFormatVersion;
  m["optimizer"] = optimizer.name();
  m["step"] = std::to_string(state.step);
  m["epoch"] = std::to_string(state.epoch);
  m["data_position"] = std::to_string(state.data_position);
  m["weights_file"] = basename_of(weights_path);
  m["weights_fnv1a64"] = bytes_hash(weights_bytes);
  m["extra"] = state.extra_json;
  for (const auto& [name, s] : state.rngs) {
    SM_CHECK(!name.empty() && name.find('.') == std::string::npos, "checkpoint_save: RNG name '" << name << "' must be non-empty without '.'");
    uint64_t spare_bits;
    std::memcpy(&spare_bits, &s.spare, 8);
    m["rng." + name + ".state"] = hex64(s.state);
    m["rng." + name + ".inc"] = hex64(s.inc);
    m["rng." + name + ".has_spare"] = s.has_spare ? "1" : "0";
    m["rng." + name + ".spare_bits"] = hex64(spare_bits);
  }
  return m;
}

TrainState state_from_metadata(const SafeTensorsFile& f, const std::string& source) {
  TrainState st;
  st.step = int64_t(meta_u64(f, source, "step"));
  st.epoch = int64_t(meta_u64(f, source, "epoch"));
  st.data_position = int64_t(meta_u64(f, source, "data_position"));
  st.extra_json = meta_get(f, source, "extra");
  for (const auto& [key, value] : f.metadata) {
    const std::string suffix = ".state";
    if (key.rfind("rng.", 0) != 0 || key.size() <= 4 + suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string name = key.substr(4, key.size() - 4 - suffix.size());
    const std::string p = "rng." + name + ".";
    Rng::State s;
    s.state = meta_u64(f, source, p + "state");
    s.inc = meta_u64(f, source, p + "inc");
    uint64_t has = meta_u64(f, source, p + "has_spare");
    SM_CHECK(has <= 1, "'" << source << "': metadata '" << p << "has_spare' must be 0 or 1");
    s.has_spare = has == 1;
    uint64_t bits = meta_u64(f, source, p + "spare_bits");
    std::memcpy(&s.spare, &bits, 8);
    st.rngs[name] = s;
  }
  return st;
}

}  // namespace

CheckpointPaths checkpoint_paths(const std::string& prefix) {
  SM_CHECK(!prefix.empty(), "checkpoint: empty path prefix");
  return {prefix + ".weights.safetensors", prefix + ".state.safetensors"};
}

void checkpoint_save(const std::string& prefix, const Module& module, const Optimizer& optimizer, const TrainState& state) {
  const CheckpointPaths paths = checkpoint_paths(prefix);
  SM_CHECK(state.step == optimizer.step_count(), "checkpoint_save: TrainState::step (" << state.step
                                                     << ") differs from the optimizer's step count (" << optimizer.step_count() << ")");
  const std::string weights_bytes = safetensors_serialize(module_named_tensors(module),
                                                          {{"format", "spinemark.weights"}, {"step", std::to_string(state.step)}},
                                                          weights_write_options());
  const std::map<std::string, std::string> meta = state_metadata(optimizer, state, paths.weights, weights_bytes);
  const std::string state_bytes = safetensors_serialize(optimizer.state_named(), meta);
  // Weights first: if we stop between the two renames, the old state file's hash no longer
  // matches the new weights and loading refuses the pair instead of mixing two checkpoints.
  file_write_atomic(paths.weights, weights_bytes);
  file_write_atomic(paths.state, state_bytes);
}

TrainState checkpoint_load(const std::string& prefix, Module& module, Optimizer& optimizer) {
  const CheckpointPaths paths = checkpoint_paths(prefix);
  const std::string weights_bytes = file_read_all(paths.weights);
  const SafeTensorsFile weights = safetensors_parse(weights_bytes, paths.weights);
  const SafeTensorsFile state = safetensors_read(paths.state);

  SM_CHECK(meta_get(state, paths.state, "format") == kFormat, "'" << paths.state << "': not a spinemark training-state file");
  SM_CHECK(meta_get(state, paths.state, "format_version") == kFormatVersion,
           "'" << paths.state << "': format version " << meta_get(state, paths.state, "format_version")
               << " is not supported (this build reads " << kFormatVersion << ")");
  SM_CHECK(meta_get(state, paths.state, "weights_fnv1a64") == bytes_hash(weights_bytes),
           "'" << paths.state << "' does not belong to '" << paths.weights
               << "' (weights hash differs: the pair comes from different saves or the weights file was modified)");
  const std::string& opt_name = meta_get(state, paths.state, "optimizer");
  SM_CHECK(opt_name == optimizer.name(), "'" << paths.state << "' holds " << opt_name << " optimizer state but the run uses "
                                             << optimizer.name());
  TrainState st = state_from_metadata(state, paths.state);
  SM_CHECK(nlohmann::json::accept(st.extra_json), "'" << paths.state << "': metadata 'extra' is not valid JSON");

  const std::vector<NamedTensor> targets = module_named_tensors(module);
  weights_check(weights, paths.weights, targets);
  optimizer.state_check(state, paths.state);
  // Everything is valid: now change the module and the optimizer.
  weights_assign(weights, paths.weights, targets);
  optimizer.state_assign(state, paths.state);
  SM_CHECK(optimizer.step_count() == st.step, "'" << paths.state << "': step " << st.step << " differs from the optimizer's "
                                                  << optimizer.name() << ".step " << optimizer.step_count());
  return st;
}

Rng::State train_state_rng(const TrainState& state, const std::string& name) {
  auto it = state.rngs.find(name);
  SM_CHECK(it != state.rngs.end(), "the checkpoint has no RNG state named '" << name << "'");
  return it->second;
}

}  // namespace sm
