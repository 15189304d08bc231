// The overlay picture of one prediction: the film in gray, each vertebra's corners and endplate
// lines, the step-1 corners faintly, the angle values written in the corner, flagged landmarks
// ringed in red and, when given, the ground truth in green.
#pragma once
#include "models/image/overlay.h"
#include "models/pipeline/pipeline.h"

namespace sm {

// The canvas is the film scaled so that its longer side is at most max_side pixels.
RgbImage prediction_overlay(const Image& film, const Schema& schema, const PipelineResult& result,
                            const Annotation* gt = nullptr, int max_side = 1024);

}  // namespace sm
