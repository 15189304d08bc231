// Training samples of the refinement network (method.md §5): one sample per (film, vertebra),
// a crop placed from the ground truth and then perturbed like step 1 errs, cut from the
// full-resolution film exactly as the pipeline cuts it (refine_crop_image), targets = the
// vertebra's corners in crop coordinates. The perturbation is drawn from errors MEASURED on the
// validation split (step-1 crop vs ground-truth crop), slightly widened, because refinement
// trained on small fixed jitter fails inside the pipeline (the §5 lesson).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "models/geometry/crop.h"
#include "models/nets/spine_model.h"
#include "train/data/augment.h"
#include "train/data/film_cache.h"
#include "train/data/loader.h"

namespace sm {

// One step-1 crop error, in the ground-truth crop's frame: centre shift as a fraction of the
// side (along the crop's x and y axes), angle in radians, log of the side ratio.
struct CropError {
  double dx = 0, dy = 0, angle = 0, log_scale = 0;
};

struct RefineJitter {
  std::vector<CropError> measured;  // empty: Gaussian fallback only
  double widen = 1.25;              // measured errors are scaled by this
  // Gaussian fallback / extra noise (standard deviations): added to every draw.
  double centre_frac = 0.03, angle_deg = 3.0, scale_log = 0.04;
  double max_centre_frac = 0.5;     // measured errors beyond this (level misses) are left out
  // Every drawn centre shift is shortened to at most this fraction of the vertebra's local level
  // spacing (the distance from its centre to the nearer neighbouring level's, ground truth). At
  // 0.5 the crop centre is equidistant from the two vertebrae; beyond it the crop shows the
  // neighbour nearer its centre than its own vertebra, and the network learns to answer with a
  // mix of the two (the mixed quadrilaterals of issue 19). 0 switches the bound off.
  double max_level_frac = 0.35;
};

nlohmann::json refine_jitter_to_json(const RefineJitter& j);
RefineJitter refine_jitter_from_json(const nlohmann::json& j, const std::string& source);

// The error of a step-1 crop against the ground-truth crop of the same vertebra.
CropError crop_error(const CropParams& truth, const CropParams& step1);
// The ground-truth crop moved by an error (the inverse of crop_error).
CropParams crop_error_apply(const CropParams& truth, const CropError& e);

struct RefineSampleConfig {
  bool augment = true;        // jitter + intensity changes; false: the ground-truth crop as it is
  AugmentOptions intensity;   // only the intensity part is used
  RefineJitter jitter;
  uint64_t seed = 0;
};

// Samples over every (film, vertebra) with all corners present: index -> pairs()[index].
class RefineSamples {
 public:
  RefineSamples(std::shared_ptr<FilmCache> films, const ModelSpec& spec, const RefineSampleConfig& config);
  SampleFn sample_fn() const;
  LoaderConfig loader_config(int batch) const;
  const std::vector<std::pair<uint32_t, uint32_t>>& pairs() const { return pairs_; }

 private:
  std::shared_ptr<FilmCache> films_;
  ModelSpec spec_;
  RefineSampleConfig cfg_;
  std::vector<std::pair<uint32_t, uint32_t>> pairs_;  // (film, vertebra)
  std::vector<double> spacing_;                        // (pairs) local level spacing, film pixels
};

// e with its centre shift (dx, dy) shortened, direction kept, to at most `max_shift` (in units
// of the crop side); angle and scale unchanged.
CropError crop_error_shift_bound(CropError e, double max_shift);

}  // namespace sm
