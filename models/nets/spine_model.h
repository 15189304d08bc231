// The three networks of the 2-step method (method.md §5) and the model folder that holds them:
//   detect  — letterboxed film -> one heatmap per vertebra level (S1 included) -> level centres;
//   coarse  — letterboxed film -> one heatmap per landmark (all corners at once);
//   refine  — one rotation-aligned crop per vertebra -> 4 corner heatmaps (shared by all levels).
// Each is a DsntNet (ResNet + DSNT head). A model folder is model.json (schema, preset, sizes,
// crop parameters, normalisation, git revision) plus detect/coarse/refine.safetensors with
// PyTorch names, so the weights load in torchvision-style code as they are.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "models/geometry/level_chain.h"
#include "models/geometry/schema.h"
#include "models/nets/dsnt_net.h"

namespace sm {

// One network of the pipeline and the image size it sees.
struct NetSpec {
  DsntNetConfig net;              // backbone + heatmap channels
  int input_width = 256;          // detect/coarse: letterbox size; refine: the crop side S
  int input_height = 256;
  int heatmap_width() const { return int(input_width / net.backbone.output_stride); }
  int heatmap_height() const { return int(input_height / net.backbone.output_stride); }
};

struct ModelSpec {
  Schema schema;                  // the full definition is stored, so user schemas travel too
  std::string preset = "small";   // "small" (2 CPU cores, minutes) or "paper" (ResNet-18/34 widths)
  NetSpec detect, coarse, refine;
  double crop_margin = 0.25;      // m: crop side s = (1 + 2m)·max(width, height) (method.md §5)
  // Crops of left-facing patients mirrored so that anterior is always on the crop's +x side
  // (schemas with the "anterior_positive" frame only; corner names are anatomical, so the
  // channels are unchanged).
  bool crop_mirror = true;
  // Refinement passes: pass 1 on crops placed by step 1; each further pass on crops re-centred
  // on the previous pass's corners (same network, our choice: docs/pipeline.md).
  int refine_passes = 2;
  // Crops per vertebra in the last pass (1..5: as is, side ×1.1, ×0.9, angle +3°, −3°), their
  // corners averaged (our choice, docs/pipeline.md).
  int refine_variants = 1;
  std::string normalisation = "standardise";  // per-image (x − mean)/std, the only one today
  // Quality-flag thresholds (pipeline.h).
  double flag_refine_shift = 0.5;    // refined corner moved more than this × vertebra size
  // The prior on consecutive level steps, fitted on the training annotations (level_chain.h):
  // with it, step 1 decodes the levels jointly in anatomical order; without it (models trained
  // before it existed) each level is its detection heatmap's mean, as before.
  LevelPrior level_prior;
  // The one-vertebra check of refined quads (quad_check.h, docs/pipeline.md): "off"; "flag"
  // (flag only); "retry" (a failing quad is refined once more from its step-1 crop and keeps its
  // refined corners if that fails too); "fallback" (as retry, then its step-1 corners). Every
  // mode but "off" flags the quads that still fail.
  std::string quad_check = "retry";
  nlohmann::json provenance = nlohmann::json::object();  // git revision, build, run that trained it
};

// The preset's networks for a schema. Sizes follow the schema's usual film shape
// (lateral lumbar: square; AP whole spine: twice as high as wide). Throws on unknown presets.
ModelSpec model_spec_preset(const Schema& schema, const std::string& preset);
std::vector<std::string> model_presets();

// JSON <-> spec. from_json validates every size and width against limits before anything is
// built and names the key on error (source: the file, for the message).
nlohmann::json model_spec_to_json(const ModelSpec& spec);
ModelSpec model_spec_from_json(const nlohmann::json& j, const std::string& source);
// Applies a JSON object of overrides ({"detect": {"input": [w, h], "widths": [...]}, ...}).
void model_spec_override(ModelSpec& spec, const nlohmann::json& overrides, const std::string& source);

struct SpineModel {
  ModelSpec spec;
  std::shared_ptr<DsntNet> detect, coarse, refine;
};

// Fresh networks (initialised from "init.detect", "init.coarse", "init.refine" streams of seed).
SpineModel spine_model_create(const ModelSpec& spec, uint64_t seed);

// Writes the folder atomically: everything goes into a temporary sibling folder that is renamed
// over `dir` at the end, so a reader never sees a half-written model.
void spine_model_save(const std::string& dir, const SpineModel& model);
// Reads and checks model.json and all three weight files before building anything; any missing,
// truncated or mismatched file fails with one line naming it.
SpineModel spine_model_load(const std::string& dir);

constexpr const char* kModelJson = "model.json";
std::string spine_model_weights_file(const std::string& stage);  // "detect.safetensors", ...

}  // namespace sm
