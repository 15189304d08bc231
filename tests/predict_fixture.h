// Helpers of the predict tests (test_predict_cli, test_predict_trust): a tiny model, synthetic
// films, and a run of the spinemark program with its stderr captured.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "models/image/image_io.h"
#include "models/nets/spine_model.h"
#include "tensor/file_io.h"
#include "test_support.h"

namespace sm::test {

// The small preset made tiny: 4 channels per stage, one block each, 64-pixel films, 32-pixel
// crops. Untrained: it answers quickly, not well.
inline ModelSpec spec_tiny(const Schema& schema) {
  ModelSpec spec = model_spec_preset(schema, "small");
  for (NetSpec* n : {&spec.detect, &spec.coarse, &spec.refine}) {
    n->net.backbone.widths = {4, 4, 4, 4};
    n->net.backbone.blocks = {1, 1, 1, 1};
  }
  spec.detect.input_width = spec.detect.input_height = 64;
  spec.coarse.input_width = spec.coarse.input_height = 64;
  spec.refine.input_width = spec.refine.input_height = 32;
  return spec;
}

// A w × h 8-bit film of diagonal stripes; k varies the pattern.
inline void film_write(const std::string& path, int w, int h, int k) {
  Image f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) f.at(x, y) = float((x * (k + 1) + y * 3) % 250);
  image_write_png(path, f);
}

struct RunResult {
  int rc = -1;
  std::string err;  // stderr
};

// Runs `<prefix> spinemark <args>` (the program of this build) with stdout discarded and stderr
// captured in the test's folder.
inline RunResult spinemark_run(const TempDir& dir, const std::string& args, const std::string& prefix = "") {
  const std::string err_file = dir.file("stderr.txt");
  const std::string cmd = prefix + std::string(SPINEMARK_BINARY_DIR) + "/spinemark " + args + " >/dev/null 2>" + err_file;
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = file_exists(err_file) ? file_read_all(err_file) : "";
  return r;
}

}  // namespace sm::test
