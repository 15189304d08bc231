// The anatomy of one synthetic lateral lumbar radiograph, sampled in a patient frame in mm
// (x anterior, y caudal, i.e. image axes of a patient facing right): vertebral corners chained
// along a lordotic curve from the S1 endplate up, the sacrum, pelvis and femoral heads, and the
// pathology drawn for this sample. Distributions: docs/synthetic.md; angles: method.md §3.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "tensor/rng.h"
#include "train/synth/raster.h"

namespace sm::synth {

struct VertebraShape {
  std::string name;             // "T11", "T12", "L1".."L5"
  std::array<Vec2, 4> corners;  // sup_ant, sup_post, inf_post, inf_ant (schema lumbar-lateral order)
  double concavity_mm = 1.0;    // endplate concavity
  bool wedge_fracture = false;  // sclerotic, anteriorly collapsed
  bool double_contour = false;  // a second, offset superior/inferior endplate line
  double double_offset_mm = 0;
  bool osteophytes = false;     // anterior spurs
  double spur_mm = 0;
  bool screw = false;           // pedicle screw (rod joins consecutive screws)
};

struct SpineGeometry {
  std::vector<VertebraShape> vertebrae;  // cranial -> caudal: T11, T12, L1..L5
  Vec2 s1_sup_ant{}, s1_sup_post{};
  std::vector<Vec2> sacrum;              // outline polygon pieces: S1..S5 as quads (4 points each)
  std::array<Vec2, 2> femoral_head{};    // centres (near and far side)
  std::array<double, 2> femoral_radius{};
  double lordosis_deg = 0, sacral_slope_deg = 0, pelvic_tilt_deg = 0;  // as sampled (targets)
  std::vector<std::string> pathology;    // e.g. "spondylolisthesis L5", "wedge_fracture L1"
  int first_lumbar = 2;                  // index of L1 in vertebrae
};

SpineGeometry spine_sample(Rng& rng);

// θ(e) of method.md §3 for an endplate in this frame (anterior +x): atan2(-e_y, e_x), degrees.
double endplate_angle_deg(Vec2 anterior, Vec2 posterior);

}  // namespace sm::synth
