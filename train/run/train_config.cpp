// Run config parsing and defaults (see train_config.h).
#include "train/run/train_config.h"

#include <filesystem>

#include "tensor/check.h"
#include "tensor/file_io.h"
#include "tensor/json_field.h"
#include "tensor/kernels/cpu_kernels_select.h"

namespace sm {

nlohmann::json augment_options_to_json(const AugmentOptions& o) {
  return {{"rotate_deg", o.rotate_deg}, {"scale_min", o.scale_min}, {"scale_max", o.scale_max},
          {"translate", o.translate},   {"flip_prob", o.flip_prob}, {"crop_prob", o.crop_prob},
          {"crop_min", o.crop_min},     {"contrast", o.contrast},   {"gamma_min", o.gamma_min},
          {"gamma_max", o.gamma_max},   {"blur_max", o.blur_max},   {"noise_max", o.noise_max},
          {"geometric", o.geometric},   {"intensity", o.intensity}, {"keep_in_frame", o.keep_in_frame}};
}

AugmentOptions augment_options_from_json(const nlohmann::json& j, const AugmentOptions& d, const std::string& where) {
  if (j.is_null()) return d;
  SM_CHECK(j.is_object(), where << ": must be a JSON object");
  std::vector<std::string> known;
  const nlohmann::json defaults = augment_options_to_json(d);  // named: items() of a temporary would dangle
  for (const auto& [key, value] : defaults.items()) known.push_back(key);
  json_keys_check(j, known, where);
  AugmentOptions o;
  o.rotate_deg = json_field(j, "rotate_deg", d.rotate_deg, where);
  o.scale_min = json_field(j, "scale_min", d.scale_min, where), o.scale_max = json_field(j, "scale_max", d.scale_max, where);
  o.translate = json_field(j, "translate", d.translate, where);
  o.flip_prob = json_field(j, "flip_prob", d.flip_prob, where), o.crop_prob = json_field(j, "crop_prob", d.crop_prob, where);
  o.crop_min = json_field(j, "crop_min", d.crop_min, where), o.contrast = json_field(j, "contrast", d.contrast, where);
  o.gamma_min = json_field(j, "gamma_min", d.gamma_min, where), o.gamma_max = json_field(j, "gamma_max", d.gamma_max, where);
  o.blur_max = json_field(j, "blur_max", d.blur_max, where), o.noise_max = json_field(j, "noise_max", d.noise_max, where);
  o.geometric = json_field(j, "geometric", d.geometric, where), o.intensity = json_field(j, "intensity", d.intensity, where);
  o.keep_in_frame = json_field(j, "keep_in_frame", d.keep_in_frame, where);
  SM_CHECK(o.rotate_deg >= 0 && o.rotate_deg <= 180 && o.scale_min > 0 && o.scale_min <= o.scale_max && o.scale_max <= 10 &&
               o.translate >= 0 && o.translate <= 1 && o.flip_prob >= 0 && o.flip_prob <= 1 && o.crop_prob >= 0 &&
               o.crop_prob <= 1 && o.crop_min > 0 && o.crop_min <= 1 && o.contrast >= 0 && o.contrast < 1 &&
               o.gamma_min > 0 && o.gamma_min <= o.gamma_max && o.gamma_max <= 10 && o.blur_max >= 0 && o.blur_max <= 20 &&
               o.noise_max >= 0 && o.noise_max <= 1,
           where << ": a value is out of range (see train/data/augment.h)");
  return o;
}

TrainConfig train_config_default(const std::string& preset) {
  TrainConfig c;
  c.preset = preset;
  const bool small = preset != "paper";
  c.detect.name = "detect", c.coarse.name = "coarse", c.refine.name = "refine";
  for (StageOptions* s : {&c.detect, &c.coarse, &c.refine}) {
    s->batch = small ? 16 : 32;
    s->minutes = small ? 4 : 20;
    s->lr = 1e-3;
    s->warmup_steps = 50;
  }
  c.refine.batch = small ? 32 : 64;
  c.refine_intensity.geometric = false;
  return c;
}

TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& source) {
  SM_CHECK(j.is_object(), source << ": a run config must be a JSON object");
  json_keys_check(j, {"schema", "preset", "model", "data", "seed", "threads", "cpu_kernels", "device", "gpu", "stages", "augment",
                      "refine_intensity", "jitter", "comment"},
                  source);
  TrainConfig c = train_config_default(json_field<std::string>(j, "preset", "small", source));
  c.schema = json_field(j, "schema", c.schema, source);
  c.model = json_field(j, "model", c.model, source);
  const nlohmann::json d = json_field_required<nlohmann::json>(j, "data", source);
  const std::string where_data = source + ": data";
  c.train_data = json_field_required<std::string>(d, "train", where_data);
  c.val_data = json_field(d, "val", c.val_data, where_data);
  c.val_fraction = json_field(d, "val_fraction", c.val_fraction, where_data);
  c.val_images_max = json_field(d, "val_images_max", c.val_images_max, where_data);
  c.exclude_flags = json_field(d, "exclude_flags", c.exclude_flags, where_data);
  c.seed = json_field(j, "seed", c.seed, source);  // a negative seed is refused, not wrapped to 2^64-1
  c.threads = json_field(j, "threads", c.threads, source);
  c.cpu_kernels = json_field(j, "cpu_kernels", c.cpu_kernels, source);
  CpuKernels kernels;
  SM_CHECK(cpu_kernels_from_name(c.cpu_kernels, kernels),
           source << ": cpu_kernels '" << c.cpu_kernels << "' is not auto, portable, scalar, avx2 or avx512");
  c.device = json_field(j, "device", c.device, source);
  SM_CHECK(c.device == "cpu" || c.device == "cuda", source << ": device '" << c.device << "' is not cpu or cuda");
  const std::string where_gpu = source + ": gpu";
  const nlohmann::json gpu = json_field(j, "gpu", nlohmann::json::object(), source);
  SM_CHECK(gpu.is_object(), where_gpu << ": must be a JSON object");
  json_keys_check(gpu, {"deterministic", "tf32", "comment"}, where_gpu);
  c.gpu_deterministic = json_field(gpu, "deterministic", c.gpu_deterministic, where_gpu);
  c.gpu_tf32 = json_field(gpu, "tf32", c.gpu_tf32, where_gpu);
  const std::string where_stages = source + ": stages";
  const nlohmann::json st = json_field(j, "stages", nlohmann::json::object(), source);
  SM_CHECK(st.is_object(), where_stages << ": must be a JSON object");
  for (const auto& [key, value] : st.items())
    SM_CHECK(key == "detect" || key == "coarse" || key == "refine", where_stages << ": unknown stage '" << key << "' (detect, coarse, refine)");
  c.detect = stage_options_from_json(json_field(st, "detect", nlohmann::json(), where_stages), c.detect, where_stages + ".detect");
  c.coarse = stage_options_from_json(json_field(st, "coarse", nlohmann::json(), where_stages), c.coarse, where_stages + ".coarse");
  c.refine = stage_options_from_json(json_field(st, "refine", nlohmann::json(), where_stages), c.refine, where_stages + ".refine");
  c.augment = augment_options_from_json(json_field(j, "augment", nlohmann::json(), source), c.augment, source + ": augment");
  c.refine_intensity = augment_options_from_json(json_field(j, "refine_intensity", nlohmann::json(), source), c.refine_intensity,
                                                 source + ": refine_intensity");
  c.jitter = refine_jitter_from_json(json_field(j, "jitter", nlohmann::json::object(), source), source + ": jitter");
  SM_CHECK(c.preset == "small" || c.preset == "paper", source << ": preset '" << c.preset << "' is not small or paper");
  SM_CHECK(c.val_fraction > 0 && c.val_fraction < 1, source << ": data.val_fraction " << c.val_fraction << " outside (0, 1)");
  SM_CHECK(c.val_images_max >= 1, source << ": data.val_images_max must be >= 1");
  SM_CHECK(c.threads >= 1 && c.threads <= 256, source << ": threads " << c.threads << " outside 1..256");
  return c;
}

nlohmann::json train_config_to_json(const TrainConfig& c) {
  nlohmann::json data{{"train", c.train_data},
                      {"val_fraction", c.val_fraction},
                      {"val_images_max", c.val_images_max},
                      {"exclude_flags", c.exclude_flags}};
  data["val"] = c.val_data.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.val_data);
  nlohmann::json jitter = refine_jitter_to_json(c.jitter);
  jitter.erase("measured");  // measured by the run, kept in jitter.json
  return {{"schema", c.schema},
          {"preset", c.preset},
          {"model", c.model},
          {"data", data},
          {"seed", c.seed},
          {"threads", c.threads},
          {"cpu_kernels", c.cpu_kernels},
          {"device", c.device},
          {"gpu", {{"deterministic", c.gpu_deterministic}, {"tf32", c.gpu_tf32}}},
          {"stages",
           {{"detect", stage_options_to_json(c.detect)},
            {"coarse", stage_options_to_json(c.coarse)},
            {"refine", stage_options_to_json(c.refine)}}},
          {"augment", augment_options_to_json(c.augment)},
          {"refine_intensity", augment_options_to_json(c.refine_intensity)},
          {"jitter", jitter}};
}

TrainConfig train_config_read(const std::string& path) {
  SM_CHECK(file_exists(path), path << ": the run config does not exist");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file_read_all(path));
  } catch (const nlohmann::json::exception& e) {
    SM_FAIL(path << ": not valid JSON (" << e.what() << ")");
  }
  TrainConfig c = train_config_from_json(j, path);
  // Data paths in a config file are relative to the file, so configs travel with their data.
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  for (std::string* p : {&c.train_data, &c.val_data})
    if (!p->empty() && std::filesystem::path(*p).is_relative()) *p = (base / *p).lexically_normal().string();
  return c;
}

}  // namespace sm
