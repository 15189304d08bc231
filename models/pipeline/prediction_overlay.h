// The overlay picture of one prediction: the film in gray, each vertebra's corners and endplate
// lines, the step-1 corners faintly, flagged landmarks ringed in red and, when given, the ground
// truth in green; in a margin right of the film (never over it) the verdict (status in green,
// yellow or red, and its reasons), the angle values and the remaining flags.
#pragma once
#include "models/image/overlay.h"
#include "models/pipeline/pipeline.h"

namespace sm {

// The canvas is the film scaled so that its longer side is at most max_side pixels, widened by
// prediction_overlay_margin_width of that scaled film on the right.
RgbImage prediction_overlay(const Image& film, const Schema& schema, const PipelineResult& result,
                            const Annotation* gt = nullptr, int max_side = 1024);
int prediction_overlay_margin_width(int film_canvas_width, int film_canvas_height);

}  // namespace sm
