// The three networks, their presets and the model folder (see spine_model.h).
#include "models/nets/spine_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "layers/weights.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "tensor/json_field.h"
#include "tensor/rng.h"
#include "tensor/safetensors.h"

namespace sm {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "spinemark.model";
constexpr int kFormatVersion = 1;

NetSpec net_spec_make(int64_t channels, int width, int height, const std::vector<int64_t>& widths,
                      const std::vector<int64_t>& blocks, int64_t output_stride) {
  NetSpec n;
  n.net.backbone.depth = 0;
  n.net.backbone.block = BlockType::Basic;
  n.net.backbone.blocks = blocks;
  n.net.backbone.widths = widths;
  n.net.backbone.output_stride = output_stride;
  n.net.backbone.in_channels = 1;
  n.net.landmarks = channels;
  n.input_width = width;
  n.input_height = height;
  return n;
}

// Largest number of corners of one vertebra: the refinement network's channel count.
int64_t corners_max(const Schema& s) {
  size_t m = 0;
  for (const auto& v : s.vertebrae) m = std::max(m, v.corners.size());
  return int64_t(m);
}

nlohmann::json net_spec_to_json(const NetSpec& n) {
  nlohmann::json j = dsnt_net_config_to_json(n.net);
  j["input"] = {n.input_width, n.input_height};
  return j;
}

NetSpec net_spec_from_json(const nlohmann::json& j, const std::string& what) {
  NetSpec n;
  SM_CHECK(j.is_object(), what << ": must be a JSON object");
  n.net = dsnt_net_config_from_json(j, what);
  const auto input = json_field_required<std::vector<int64_t>>(j, "input", what);
  SM_CHECK(input.size() == 2 && input[0] >= 8 && input[0] <= 8192 && input[1] >= 8 && input[1] <= 8192,
           what << ": 'input' must be [width, height], each 8..8192");
  n.input_width = int(input[0]);
  n.input_height = int(input[1]);
  return n;
}

void net_spec_validate(const NetSpec& n, const std::string& what) {
  dsnt_net_config_validate(n.net, what);
  SM_CHECK(n.input_width >= 8 && n.input_width <= 8192 && n.input_height >= 8 && n.input_height <= 8192,
           what << ": input " << n.input_width << "x" << n.input_height << " outside 8..8192");
  SM_CHECK(n.input_width % n.net.backbone.output_stride == 0 && n.input_height % n.net.backbone.output_stride == 0,
           what << ": input " << n.input_width << "x" << n.input_height << " must be a multiple of the output stride "
                << n.net.backbone.output_stride);
  SM_CHECK(n.heatmap_width() >= 2 && n.heatmap_height() >= 2, what << ": heatmaps would be smaller than 2x2");
}

void spec_validate(const ModelSpec& s, const std::string& source) {
  const int64_t V = s.schema.vertebra_count(), L = s.schema.landmark_count();
  net_spec_validate(s.detect, source + ": detect");
  net_spec_validate(s.coarse, source + ": coarse");
  net_spec_validate(s.refine, source + ": refine");
  SM_CHECK(s.detect.net.landmarks == V, source << ": detect has " << s.detect.net.landmarks << " channels but schema '"
                                               << s.schema.name << "' has " << V << " vertebrae");
  SM_CHECK(s.coarse.net.landmarks == L, source << ": coarse has " << s.coarse.net.landmarks << " channels but schema '"
                                               << s.schema.name << "' has " << L << " landmarks");
  SM_CHECK(s.refine.net.landmarks == corners_max(s.schema),
           source << ": refine has " << s.refine.net.landmarks << " channels, the schema's vertebrae have up to "
                  << corners_max(s.schema) << " corners");
  SM_CHECK(s.refine.input_width == s.refine.input_height, source << ": refine crops must be square");
  SM_CHECK(s.crop_margin >= 0 && s.crop_margin <= 2, source << ": crop_margin " << s.crop_margin << " outside 0..2");
  SM_CHECK(s.refine_passes >= 1 && s.refine_passes <= 8, source << ": refine_passes " << s.refine_passes << " outside 1..8");
  SM_CHECK(s.refine_variants >= 1 && s.refine_variants <= 5, source << ": refine_variants " << s.refine_variants << " outside 1..5");
  SM_CHECK(s.quad_check == "off" || s.quad_check == "flag" || s.quad_check == "retry" || s.quad_check == "fallback",
           source << ": quad_check '" << s.quad_check << "' is not off, flag, retry or fallback");
  // A corner that moves by more than a few vertebra sizes is lost whatever the threshold; below
  // 0.05 every refinement would be flagged.
  SM_CHECK(s.flag_refine_shift >= 0.05 && s.flag_refine_shift <= 5, source << ": flags.refine_shift " << s.flag_refine_shift << " outside 0.05..5");
}

// ---- binding model.json to its weights, and load-time checks (docs/reliability.md) ----------

// FNV-1a, 64 bits (Fowler, Noll, Vo; tensor/rng.h hash_string): h = 14695981039346656037; for
// each byte b: h = (h XOR b) × 1099511628211 mod 2^64. Not cryptographic: it detects a weights
// file swapped for another or changed after model.json was written (accident, not attack).
std::string fnv1a64_hex(const std::string& bytes) { return hash_string_hex(bytes); }

constexpr const char* kWeightsKey = "weights_fnv1a64";  // {"detect": hex, "coarse": hex, "refine": hex}

// Keys of a model folder's model.json: every one required, no other allowed (a typo such as
// "refine_pases" must not fall back silently to a default).
void model_json_check_keys(const nlohmann::json& j, const std::string& source) {
  SM_CHECK(j.is_object(), source << ": not a JSON object");
  const std::vector<std::string> top{"format", "format_version", "schema", "preset", "detect", "coarse", "refine", "crop",
                                     "refine_passes", "refine_variants", "normalisation", "flags", "provenance"};
  SM_CHECK(j.contains(kWeightsKey),
           source << ": no '" << kWeightsKey << "': this model folder was written before model.json was bound to its "
                  << "weights (or by another tool); re-save it with this version of spinemark (spine_model_save) "
                  << "so that its weights are hashed, then load it again");
  std::vector<std::string> known = top;
  known.push_back(kWeightsKey);
  known.push_back("level_prior");  // optional: models trained before issue 19 have none
  known.push_back("quad_check");   // optional (default "retry")
  json_keys_check(j, known, source);
  for (const auto& key : top) SM_CHECK(j.contains(key), source << ": '" << key << "' is missing");
  const auto exactly = [&](const char* what, const std::vector<std::string>& keys) {
    const nlohmann::json& o = j[what];
    SM_CHECK(o.is_object(), source << ": '" << what << "' must be a JSON object");
    for (const auto& [key, value] : o.items())
      SM_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(), source << ": " << what << ": unknown key '" << key << "'");
    for (const auto& key : keys) SM_CHECK(o.contains(key), source << ": " << what << ": '" << key << "' is missing");
  };
  exactly("crop", {"margin", "mirror"});
  exactly("flags", {"refine_shift"});
  exactly(kWeightsKey, {"detect", "coarse", "refine"});
  for (const char* stage : {"detect", "coarse", "refine"}) {
    const nlohmann::json& h = j[kWeightsKey][stage];
    SM_CHECK(h.is_string() && h.get<std::string>().size() == 16, source << ": " << kWeightsKey << "." << stage << " must be 16 hex digits");
  }
}

// Every value finite, and every BatchNorm running variance non-negative: a NaN or inf weight
// makes every prediction NaN (or, worse, plausible garbage through a clamp); a negative variance
// is the square root of a negative number in the folded BatchNorm.
void weights_check_values(const SafeTensorsFile& file, const std::string& path) {
  for (const auto& [name, tensor] : file.tensors) {
    const std::vector<double> v = tensor.to_vector_f64();
    const bool variance = name.size() >= 11 && name.compare(name.size() - 11, 11, "running_var") == 0;
    for (size_t i = 0; i < v.size(); ++i) {
      SM_CHECK(std::isfinite(v[i]), path << ": tensor '" << name << "' holds " << v[i] << " at element " << i
                                         << " (weights must be finite)");
      SM_CHECK(!variance || v[i] >= 0, path << ": tensor '" << name << "' holds the negative variance " << v[i]
                                            << " at element " << i);
    }
  }
}

}  // namespace

std::vector<std::string> model_presets() { return {"small", "paper"}; }

ModelSpec model_spec_preset(const Schema& schema, const std::string& preset) {
  ModelSpec s;
  s.schema = schema;
  s.preset = preset;
  const int64_t V = schema.vertebra_count(), L = schema.landmark_count(), C = corners_max(schema);
  // AP whole-spine films are about twice as high as wide; lateral lumbar films about square.
  const bool tall = schema.vertebra_count() > 8;
  s.crop_mirror = schema.frame == "anterior_positive";
  if (preset == "small") {
    // Step 1 at output stride 8 on a 256-pixel film (32×32 heatmaps); refinement at output
    // stride 4 on 64-pixel crops. method.md §5's reference used widths 16/32/64/128 throughout;
    // at output stride 8 the last stage runs dilated at 32×32 and costs 70 % of the network, so
    // step 1 keeps it at 64 channels: half the time per step (0.54 vs 1.1 s for a batch of 16 on
    // 2 cores), i.e. twice the epochs in the same budget (docs/training.md).
    const std::vector<int64_t> w1{16, 32, 64, 64}, w2{16, 32, 64, 128}, b{2, 2, 2, 2};
    const int iw = 256, ih = tall ? 512 : 256;
    s.detect = net_spec_make(V, iw, ih, w1, b, 8);
    s.coarse = net_spec_make(L, iw, ih, w1, b, 8);
    s.refine = net_spec_make(C, 64, 64, w2, b, 4);
    s.refine_variants = 3;  // measured on the demo's test films: median y error 0.79 -> 0.74 %
  } else if (preset == "paper") {
    // ResNet-34 widths for step 1 (level identity needs depth), ResNet-18 for the crops.
    const std::vector<int64_t> w{64, 128, 256, 512};
    const int iw = 512, ih = tall ? 1024 : 512;
    s.detect = net_spec_make(V, iw, ih, w, {3, 4, 6, 3}, 8);
    s.coarse = net_spec_make(L, iw, ih, w, {3, 4, 6, 3}, 8);
    s.refine = net_spec_make(C, 128, 128, w, {2, 2, 2, 2}, 4);
  } else {
    SM_FAIL("unknown model preset '" << preset << "' (known: small, paper)");
  }
  spec_validate(s, "preset " + preset);
  return s;
}

nlohmann::json model_spec_to_json(const ModelSpec& s) {
  nlohmann::json j = {{"format", kFormat},
          {"format_version", kFormatVersion},
          {"schema", schema_to_json(s.schema)},
          {"preset", s.preset},
          {"detect", net_spec_to_json(s.detect)},
          {"coarse", net_spec_to_json(s.coarse)},
          {"refine", net_spec_to_json(s.refine)},
          {"crop", {{"margin", s.crop_margin}, {"mirror", s.crop_mirror}}},
          {"refine_passes", s.refine_passes},
          {"refine_variants", s.refine_variants},
          {"normalisation", s.normalisation},
          {"flags", {{"refine_shift", s.flag_refine_shift}}},
          {"provenance", s.provenance}};
  if (!s.level_prior.empty()) j["level_prior"] = level_prior_to_json(s.level_prior);
  j["quad_check"] = s.quad_check;
  return j;
}

ModelSpec model_spec_from_json(const nlohmann::json& j, const std::string& source) {
  ModelSpec s;
  SM_CHECK(j.is_object(), source << ": not a JSON object");
  SM_CHECK(json_field<std::string>(j, "format", "", source) == kFormat, source << ": 'format' is not \"" << kFormat << "\"");
  const int version = json_field(j, "format_version", 0, source);
  SM_CHECK(version == kFormatVersion, source << ": format_version " << version << " is not " << kFormatVersion);
  const nlohmann::json schema = json_field_required<nlohmann::json>(j, "schema", source);
  try {
    s.schema = schema_from_json(schema);
  } catch (const Error& e) {
    SM_FAIL(source << ": " << e.what());
  }
  s.preset = json_field_required<std::string>(j, "preset", source);
  for (const char* stage : {"detect", "coarse", "refine"}) {
    NetSpec& n = std::string(stage) == "detect" ? s.detect : std::string(stage) == "coarse" ? s.coarse : s.refine;
    n = net_spec_from_json(json_field_required<nlohmann::json>(j, stage, source), source + ": " + stage);
  }
  const nlohmann::json crop = json_field_required<nlohmann::json>(j, "crop", source);
  s.crop_margin = json_field_required<double>(crop, "margin", source + ": crop");
  s.crop_mirror = json_field_required<bool>(crop, "mirror", source + ": crop");
  s.normalisation = json_field_required<std::string>(j, "normalisation", source);
  s.refine_passes = json_field(j, "refine_passes", 1, source);
  s.refine_variants = json_field(j, "refine_variants", 1, source);
  SM_CHECK(s.normalisation == "standardise", source << ": normalisation '" << s.normalisation << "' is unknown");
  const nlohmann::json flags = json_field(j, "flags", nlohmann::json::object(), source);
  s.flag_refine_shift = json_field(flags, "refine_shift", s.flag_refine_shift, source + ": flags");
  s.provenance = json_field(j, "provenance", nlohmann::json::object(), source);
  if (j.contains("level_prior"))
    s.level_prior = level_prior_from_json(j["level_prior"], s.schema.vertebra_count(), source + ": level_prior");
  s.quad_check = json_field(j, "quad_check", s.quad_check, source);
  spec_validate(s, source);
  return s;
}

void model_spec_override(ModelSpec& s, const nlohmann::json& o, const std::string& source) {
  if (o.is_null()) return;
  SM_CHECK(o.is_object(), source << ": 'model' overrides must be a JSON object");
  for (const auto& [key, value] : o.items()) {
    if (key == "detect" || key == "coarse" || key == "refine") {
      NetSpec& n = key == "detect" ? s.detect : key == "coarse" ? s.coarse : s.refine;
      nlohmann::json merged = net_spec_to_json(n);
      merged.merge_patch(value);
      n = net_spec_from_json(merged, source + ": model." + key);
    } else if (key == "crop_margin") {
      s.crop_margin = json_field_required<double>(o, key, source + ": model");
    } else if (key == "crop_mirror") {
      s.crop_mirror = json_field_required<bool>(o, key, source + ": model");
    } else if (key == "refine_passes") {
      s.refine_passes = json_field_required<int>(o, key, source + ": model");
    } else if (key == "refine_variants") {
      s.refine_variants = json_field_required<int>(o, key, source + ": model");
    } else if (key == "quad_check") {
      s.quad_check = json_field_required<std::string>(o, key, source + ": model");
    } else {
      SM_FAIL(source << ": unknown model key '" << key << "' (detect, coarse, refine, crop_margin, crop_mirror, refine_passes, refine_variants, quad_check)");
    }
  }
  spec_validate(s, source);
}

SpineModel spine_model_create(const ModelSpec& spec, uint64_t seed) {
  spec_validate(spec, "model");
  SpineModel m;
  m.spec = spec;
  Rng master(seed);
  Rng rd = master.derive("init.detect"), rc = master.derive("init.coarse"), rr = master.derive("init.refine");
  m.detect = std::make_shared<DsntNet>(spec.detect.net, rd);
  m.coarse = std::make_shared<DsntNet>(spec.coarse.net, rc);
  m.refine = std::make_shared<DsntNet>(spec.refine.net, rr);
  return m;
}

std::string spine_model_weights_file(const std::string& stage) { return stage + ".safetensors"; }

void spine_model_save(const std::string& dir_in, const SpineModel& m) {
  fs::path dir = fs::path(dir_in).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "model/" names the folder "model"
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  SM_CHECK(!ec, parent.string() << ": cannot create the folder: " << ec.message());
  const fs::path tmp = parent / (dir.filename().string() + ".tmp." + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  SM_CHECK(!ec, tmp.string() << ": cannot create the folder: " << ec.message());
  try {
    const std::map<std::string, std::string> meta{{"format", kFormat}};
    weights_save((tmp / spine_model_weights_file("detect")).string(), *m.detect, meta);
    weights_save((tmp / spine_model_weights_file("coarse")).string(), *m.coarse, meta);
    weights_save((tmp / spine_model_weights_file("refine")).string(), *m.refine, meta);
    // model.json last, bound to the three files just written by their hashes.
    nlohmann::json j = model_spec_to_json(m.spec);
    for (const char* stage : {"detect", "coarse", "refine"})
      j[kWeightsKey][stage] = fnv1a64_hex(file_read_all((tmp / spine_model_weights_file(stage)).string()));
    file_write_atomic((tmp / kModelJson).string(), j.dump(2) + "\n");
    // Swap in: the old folder (if any) goes aside first, so that a crash leaves one complete copy.
    const fs::path old = parent / (dir.filename().string() + ".old." + std::to_string(::getpid()));
    if (fs::exists(dir)) fs::rename(dir, old);
    try {
      fs::rename(tmp, dir);
    } catch (...) {
      if (fs::exists(old)) fs::rename(old, dir, ec);  // put the previous model back
      throw;
    }
    fs::remove_all(old, ec);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    SM_FAIL(dir.string() << ": cannot write the model: " << e.code().message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

SpineModel spine_model_load(const std::string& dir) {
  const std::string json_path = (fs::path(dir) / kModelJson).string();
  SM_CHECK(fs::is_directory(dir), dir << ": not a model folder (it does not exist or is not a folder)");
  SM_CHECK(fs::exists(json_path), json_path << ": missing (a model folder holds model.json and the three weight files)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file_read_all(json_path));
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(json_path << ": not valid JSON (" << e.what() << ")");
  }
  model_json_check_keys(j, json_path);
  const ModelSpec spec = model_spec_from_json(j, json_path);
  SpineModel m = spine_model_create(spec, 0);
  // Read and check all three files before assigning any, so nothing is half-loaded.
  std::vector<std::pair<SafeTensorsFile, std::string>> files;
  const std::pair<const char*, std::shared_ptr<DsntNet>> nets[] = {{"detect", m.detect}, {"coarse", m.coarse}, {"refine", m.refine}};
  for (const auto& [stage, net] : nets) {
    const std::string path = (fs::path(dir) / spine_model_weights_file(stage)).string();
    SM_CHECK(fs::exists(path), path << ": missing (the " << stage << " network's weights)");
    const std::string recorded = j[kWeightsKey][stage].get<std::string>(), actual = fnv1a64_hex(file_read_all(path));
    SM_CHECK(actual == recorded, path << ": FNV-1a hash " << actual << " differs from " << recorded << " recorded in "
                                      << json_path << " (the weights file was changed or swapped after the model was saved)");
    files.push_back({safetensors_read(path), path});
    weights_check(files.back().first, path, module_named_tensors(*net));
    weights_check_values(files.back().first, path);
  }
  for (size_t k = 0; k < 3; ++k) weights_assign(files[k].first, files[k].second, module_named_tensors(*nets[k].second));
  return m;
}

}  // namespace sm
