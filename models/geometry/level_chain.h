// Ordered level decoding (issue 19 §1): the detection network gives one heatmap per level; each
// heatmap offers a few candidate peaks, and the levels of a film are decoded JOINTLY as one chain
// — the candidate of every level chosen so that the whole chain is most probable under a prior
// on the step from one level to the next, learnt from the training annotations. The best chain
// is a shortest path through a layered graph (dynamic programming), so the decoded levels are in
// anatomical order, none twice and none skipped, by construction: a level with no acceptable
// candidate is declared missing and placed by the prior between (or beyond) its decoded
// neighbours, and the caller flags it.
//
// The cost of a chain (negative log-probability up to constants):
//   Σ_v −log m(v, i_v)                           unary: the heatmap mass of the chosen peak
// + Σ_consecutive ½ rᵀ C⁻¹ r,  r = (p_w − p_v)/s − Σ_{u=v}^{w−1} μ_u,  C = Σ_{u=v}^{w−1} Σ_u
//                                                pair: the step between decoded levels v < w
// + (number of missing levels) · miss_cost
// with μ_u, Σ_u the prior's mean and covariance of the step from level u to u+1 in units of s,
// the film's level spacing (estimated from the strongest peaks; a few scales are tried and the
// cheapest chain wins). A step must advance along its expected direction by at least
// min_advance of its expected length; anything else (a swap, two levels on one vertebra) is
// forbidden outright.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/geometry/annotation.h"

namespace sm {

// One candidate position of a level: a heatmap peak mapped to film pixels, and the probability
// mass of the heatmap around it (0..1).
struct LevelCandidate {
  Point2 p{0.0, 0.0};
  double mass = 0.0;
};

// The prior on consecutive level steps, in units of the film's median level spacing.
struct LevelPrior {
  std::vector<Point2> mean;               // (V−1) μ_v of (c_{v+1} − c_v)/s
  std::vector<std::array<double, 3>> cov;  // (V−1) Σ_v as (xx, xy, yy), floor included
  int films = 0;                           // training films it was fitted on
  bool empty() const { return mean.empty(); }
};

// Fit from the ground-truth level centres of training films ((V) each, NaN where absent). Each
// film's steps are divided by its median step length s; mirrored copies (x → −x) are included
// because training flips films; a floor of `sd_floor`² is added to each covariance's diagonal
// so that the prior tolerates rotations and populations the training set lacks. Pairs seen in
// fewer than 3 films take the pooled mean and covariance of all pairs. Throws when no film has
// two consecutive levels.
LevelPrior level_prior_fit(const std::vector<std::vector<Point2>>& centres, double sd_floor = 0.12);
nlohmann::json level_prior_to_json(const LevelPrior& prior);
// Validates sizes (levels − 1 entries), finiteness and positive-definite covariances.
LevelPrior level_prior_from_json(const nlohmann::json& j, int levels, const std::string& source);

struct LevelDecodeOptions {
  double miss_cost = 6.0;      // cost of declaring one level missing (≈ −log of a 0.25 % peak)
  double mass_floor = 1e-4;    // masses are clamped up to this before the log
  double min_advance = 0.3;    // a step must advance ≥ this × its expected length
  int max_gap = 3;             // at most this many consecutive missing levels inside the chain
};

struct LevelDecode {
  bool decoded = false;        // false: no candidates or no scale (centres are the input tops)
  std::vector<Point2> centres;  // (V) film pixels; missing levels placed by the prior
  std::vector<int> chosen;     // (V) index into that level's candidates, −1 = missing
  double scale = 0.0;          // s, film pixels
  double cost = 0.0;
};

// candidates: (V) per level, any number each (possibly none). Sorted or not.
LevelDecode level_chain_decode(const std::vector<std::vector<LevelCandidate>>& candidates, const LevelPrior& prior,
                               const LevelDecodeOptions& options = {});

}  // namespace sm
