// The 2-step inference (method.md §5) as a library class: letterbox -> detection -> coarse ->
// rotation-aligned crops from the FULL-resolution image -> refinement -> exact back-mapping.
// The step-1 coordinates are kept; every landmark gets a confidence (its heatmap's spread in
// image pixels) and the result carries quality flags. The three networks are reached through
// StagePredictor functions, so tests can put ground truth in their place and check that the
// geometry alone returns the true corners.
#pragma once
#include <array>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/geometry/crop.h"
#include "models/geometry/letterbox.h"
#include "models/geometry/level_chain.h"
#include "models/nets/spine_model.h"
#include "layers/heatmap_peaks.h"
#include "tensor/tensor.h"

namespace sm {

// What a network stage returns for a batch: normalised coordinates in (-1, 1) over its input
// and the spread √(Var_x + Var_y) of each heatmap in INPUT pixels. Doubles, so that the
// geometry around the networks can be checked exactly (a float32 coordinate alone carries
// ~1e-6 px of rounding at these sizes).
struct StageOutput {
  int n = 0, k = 0;
  std::vector<double> coords;  // (n, k, 2)
  std::vector<double> spread;  // (n, k)
  // Optional: the modes of each heatmap (n·k lists, strongest first; x, y normalised like
  // coords, mass 0..1). The detection stage's feed the ordered level decoding; a predictor
  // without heatmaps (a test oracle) leaves it empty and the means are used as they are.
  std::vector<std::vector<HeatmapPeak>> peaks;
};

// What the pipeline knows about the images it hands a stage (the networks ignore it; a
// ground-truth oracle in a test uses it to answer exactly).
struct StageQuery {
  const Letterbox* letterbox = nullptr;            // step 1: the one letterboxed film
  const std::vector<CropParams>* crops = nullptr;  // step 2: one per row
  const std::vector<bool>* mirrored = nullptr;     // step 2: row was mirrored
  const std::vector<int>* vertebrae = nullptr;     // step 2: vertebra index of each row
};

// images: (N, 1, H, W) float32 on the CPU, already normalised.
using StagePredictor = std::function<StageOutput(const Tensor& images, const StageQuery& query)>;

// A DsntNet as a predictor (eval mode, no gradients) on `device`.
StagePredictor stage_predictor_from_net(std::shared_ptr<DsntNet> net, Device device);

// ---- the pieces that training and inference must share exactly --------------------------------
// Per-image standardisation (method.md §5): (x − mean)/std (std floored at 1e-6).
void image_standardise(Image& image);
// The network input of step 1: the film letterboxed to (input_width, input_height), padded with 0.
Image step1_input(const Image& film, const Letterbox& lb);
// The refinement crop: crop_sample of the full-resolution film, then mirrored left-right when
// `mirror`; standardised. Crop pixel u of a mirrored crop is u' = (S − 1 − u_x, u_y).
Image refine_crop_image(const Image& film, const CropParams& crop, bool mirror);
Point2 refine_crop_from_image(const CropParams& crop, bool mirror, const Point2& p);
Point2 refine_crop_to_image(const CropParams& crop, bool mirror, const Point2& u);
// Whether a film's crops are mirrored: the schema mirrors angles (anterior_positive) and the
// patient faces image-left by these points.
bool refine_mirror(const ModelSpec& spec, const std::vector<Point2>& points);
// Vertebra centres from landmarks (the detection targets): the mean of its corners, the
// endplate midpoint for S1; NaN where a corner is missing. (V,)
std::vector<Point2> vertebra_centres(const Schema& schema, const std::vector<Point2>& points);
// Crop parameters of vertebra v from step-1 outputs: centre from the detection network, angle
// and size from the coarse corners (crop_params_from_vertebra on them). Falls back to the coarse
// centre when the detection centre is not finite. Throws when the coarse corners are unusable.
CropParams refine_crop_params(const ModelSpec& spec, const std::vector<Point2>& coarse, const Point2& centre, int v);

// Where a decoded level centre comes from (ordered level decoding, level_chain.h).
enum class LevelSource {
  Mean,   // the detection heatmap's mean (DSNT), as the chain chose its main mode
  Peak,   // another mode of the heatmap, chosen by the chain (the mean lay elsewhere)
  Prior,  // no acceptable mode: placed by the prior between or beyond its decoded neighbours
};

struct PipelineResult {
  int image_width = 0, image_height = 0;
  std::vector<Point2> centres;            // (V) detection network, image pixels, decoded in order
  std::vector<LevelSource> level_source;  // (V) (all Mean when the model has no level prior)
  std::vector<bool> coarse_reanchored;    // (V) coarse corners moved onto the decoded centre
  std::vector<std::string> quad_check;    // (V) "" or why the refined quad failed (then step 1)
  std::vector<double> centre_spread_px;   // (V)
  std::vector<Point2> step1;              // (L) coarse network, image pixels
  std::vector<double> step1_spread_px;    // (L)
  std::vector<Point2> landmarks;          // (L) refined (step 1 where a vertebra had no crop)
  std::vector<double> spread_px;          // (L) confidence of `landmarks`, image pixels
  std::vector<CropParams> crops;          // (V) crop of each vertebra (size 0: none)
  std::vector<bool> mirrored;             // (V)
  std::vector<double> angles;             // schema.angles order, degrees (NaN: not computable)
  std::vector<double> step1_angles;
  std::vector<std::string> flags;         // e.g. "level_outside_image:L3" (see pipeline_flags)
  std::vector<bool> landmark_flagged;     // (L) a flag concerns this landmark
  std::vector<std::pair<std::string, double>> timings_ms;  // stage -> ms, in order
  // The film itself (run_step1): pixel spacing (row, col) when known, and the standard deviation
  // of its intensities as a fraction of the full scale of its bits (pipeline_verdict).
  std::optional<std::array<double, 2>> pixel_spacing_mm;
  double film_signal = NAN;
  // The film-level verdict (pipeline_verdict; docs/pipeline.md "Verdict"): "ok", "review" or
  // "rejected", and why ("<kind>:<what>", the flags or rejection reasons that decided it).
  std::string status = "ok";
  std::vector<std::string> status_reasons;
};

// Quality flags (strings "<kind>:<what>"):
//   level_outside_image:<V>           a detected centre lies outside the image
//   levels_out_of_order:<V1>,<V2>     consecutive levels not in cranial->caudal order along the spine
//   refine_far_from_step1:<landmark>  refined corner moved > flag_refine_shift × vertebra size
//   degenerate_quadrilateral:<V>      refined corners self-intersecting, collapsed or non-convex
//   detect_coarse_disagree:<V>        detection centre far from the coarse corners' centre
//   angle_out_of_range:<angle>        outside the plausible range of its kind
//   angle_not_computable:<angle>      NaN
//   spine_axis_rotated:<degrees>      the chain of levels runs far from the image's +y (training orientation)
//   heatmap_spread_large:<ratio>      median detection spread / vertebra size far above a trained net's
//   anisotropic_pixels:<col/row>      non-square pixels (angles are measured in mm all the same)
//   level_not_detected:<V>            no heatmap mode fits the chain: placed by the level prior
//   level_redecoded:<V>               the chain chose another mode than the heatmap's mean
//   coarse_reanchored:<V>             the coarse corners sat on another level: moved to the centre
//   quad_check_failed:<V>:<why>       the refined corners are no single vertebra: step 1 kept
void pipeline_flags(const ModelSpec& spec, PipelineResult& r);

// Thresholds of the verdict (docs/pipeline.md "Verdict" gives the reasoning).
constexpr double kVerdictMinSignal = 0.002;   // film std / full scale below this: no usable signal
constexpr int kVerdictMinSide = 64;           // a film side below this many pixels: far too small
constexpr double kVerdictAxisDeg = 35;        // spine_axis_rotated above this angle from +y
constexpr double kVerdictSpreadRatio = 1.0;   // heatmap_spread_large above this × vertebra size
// The film-level verdict from r's flags and film statistics: "rejected" (no usable signal, far
// too small, level chain not decodable; angles are not to be used), else "review" when a flag
// that predicts a gross error is raised (every flag but anisotropic_pixels), else "ok". Sets
// r.status and r.status_reasons. Call after pipeline_flags.
void pipeline_verdict(const ModelSpec& spec, PipelineResult& r);
// The standard deviation of the film's intensities / (2^bits − 1), bits clamped to 1..16.
double film_signal(const Image& film);

class Pipeline {
 public:
  Pipeline(ModelSpec spec, StagePredictor detect, StagePredictor coarse, StagePredictor refine);
  // The model's networks on `device`.
  static Pipeline from_model(const SpineModel& model, Device device);

  // Step 1 alone (centres, step1, crops filled; landmarks = step1).
  PipelineResult run_step1(const Image& film) const;
  // Step 2 on a step-1 result (fills landmarks, spread_px, angles, flags, timings).
  void run_step2(const Image& film, PipelineResult& r) const;
  // Both steps.
  PipelineResult run(const Image& film) const;

  const ModelSpec& spec() const { return spec_; }

 private:
  // only: (V) the vertebrae to refine (nullptr: every one with a crop).
  void refine_pass(const Image& film, PipelineResult& r, const std::vector<std::array<double, 2>>& variants,
                   const std::vector<bool>* only = nullptr) const;
  ModelSpec spec_;
  StagePredictor detect_, coarse_, refine_;
};

}  // namespace sm
