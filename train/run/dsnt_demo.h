// A small, self-contained DSNT training run on generated images of blobs: the first thing to
// run, and a worked example for students. The network localises the centre of one bright blob
// in a noisy image; training is Euclidean + λ·JS (method.md §4); the held-out error is reported
// in pixels of the input image. Progress goes through a callback (the library never prints).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/image/image.h"
#include "tensor/tensor.h"

namespace sm {

struct BlobDemoConfig {
  uint64_t seed = 1;
  int image_size = 32;   // square input, also the heatmap size (output stride 1)
  int width = 16;        // channels of the conv layers
  int batch = 16;
  int steps = 500;
  int test_images = 200;
  double lr = 3e-3;      // Adam, cosine decay after a short linear warm-up
  int warmup_steps = 20;
  double js_lambda = 1.0;
  double sigma = 1.0;    // σ of the JS target, heatmap pixels
  std::string out_dir;   // PNG snapshots go here when non-empty
  std::vector<int> snapshot_steps;  // empty: first, a quarter, half and last step
  Device device = Device::CPU;       // CUDA: network, batches and optimizer on the GPU
};

struct BlobDemoProgress {
  int step = 0, steps = 0;
  double loss = 0, grad_norm = 0, lr = 0, ms = 0, samples_per_s = 0;
  double train_error_px = 0;  // mean over this batch
};

struct BlobDemoResult {
  double mean_error_px = 0, median_error_px = 0, p90_error_px = 0, max_error_px = 0;
  int test_images = 0;
  double seconds = 0;
  std::vector<std::string> pictures;  // PNGs written
};

// One generated example: the image (size × size, zero mean) and the blob centre in pixels.
struct BlobExample {
  Image image;
  double x = 0, y = 0;
};
BlobExample blob_example_make(uint64_t seed, uint64_t index, int size);

BlobDemoResult blob_demo_run(const BlobDemoConfig& config, const std::function<void(const BlobDemoProgress&)>& on_progress);

}  // namespace sm
