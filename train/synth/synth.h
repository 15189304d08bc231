// Synthetic lateral lumbar radiographs with exact ground truth (method.md §7.2, docs/synthetic.md):
// one image and its annotation from (seed, index), bit-identical on a given machine and build.
#pragma once
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/geometry/annotation.h"
#include "models/geometry/schema.h"
#include "models/image/image.h"

namespace sm {

struct SynthOptions {
  int size = 512;  // square image side in pixels
};

struct SynthSample {
  Image image;              // (size, size) 16-bit intensities 0..65535 (integers), bright = dense
  Annotation annotation;    // schema landmarks (exact), pixel spacing, extra keys (femoral heads, ...)
};

// Requires a schema whose landmarks are all among L1..L5 {sup_ant, sup_post, inf_post, inf_ant}
// and S1 {sup_ant, sup_post} (lumbar-lateral); throws sm::Error naming the first one it lacks.
SynthSample synth_generate(const Schema& schema, uint64_t seed, uint64_t index, const SynthOptions& options = {});
// Writes DIR/<stem>.png (8- or 16-bit) and DIR/<stem>.json (method.md §2.1), both atomically.
void synth_write(const std::string& dir, const std::string& stem, const SynthSample& sample, const Schema& schema,
                 int bits = 16);

}  // namespace sm
