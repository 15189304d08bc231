// The AASCE Cobb-angle rule of the dataset's creators, exactly as method.md §3.1 writes it (not
// the popular Python port, which differs on 33 images), and the challenge's SMAPE.
#pragma once
#include <array>
#include <vector>

#include "models/geometry/annotation.h"

namespace sm {

// One vertebra's corners in the stored AASCE order.
struct CobbVertebra {
  Point2 top_left, top_right, bottom_left, bottom_right;
};

struct CobbResult {
  std::array<double, 3> angles{0, 0, 0};  // degrees; [0] is always the largest
  int upper = -1, lower = -1;  // 0-based end vertebrae of the main curve (u < l)
  bool s_shape = false;        // the rule's "S" test (step 5)
};

// Applies the rule to n >= 2 vertebrae in the order given (the stored order, to reproduce
// angles.csv) on an image `image_height` pixels high (step 7 compares against it).
CobbResult cobb_aasce(const std::vector<CobbVertebra>& vertebrae, double image_height);

// False when a vertebra's left -> right direction (step 2) has no length (coincident corners):
// the rule's cosines would be NaN. angles_compute gives NaN angles then instead of failing.
bool cobb_computable(const std::vector<CobbVertebra>& vertebrae);

// SMAPE in % (method.md §3.1): per image Σ|pred − gt| / Σ(pred + gt), averaged over images.
// An image whose angles are all zero in both contributes 0. Sizes must match.
double smape_percent(const std::vector<std::array<double, 3>>& pred, const std::vector<std::array<double, 3>>& gt);

}  // namespace sm
