// Spine dataset -> loader samples (see spine_samples.h).
#include "train/data/spine_samples.h"

#include <cmath>
#include <mutex>

#include "layers/dsnt.h"
#include "models/geometry/letterbox.h"
#include "models/image/image_io.h"
#include "models/pipeline/pipeline.h"

namespace sm {

namespace {

struct Letterboxed {
  Image image;                 // (input_height, input_width)
  std::vector<Point2> points;  // in input pixels
  std::vector<bool> visible;
};

// Shared, lazily filled cache of letterboxed images: decoding a 3000-pixel JPEG costs far more
// than augmenting its 256×512 letterbox.
struct SampleSource {
  std::vector<DatasetEntry> entries;
  Schema schema;
  SpineSampleConfig cfg;
  std::vector<std::shared_ptr<const Letterboxed>> cache;
  std::mutex mu;

  std::shared_ptr<const Letterboxed> load(uint64_t index) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (cache[index]) return cache[index];
    }
    const DatasetEntry& e = entries[index];
    Image img = image_read(e.image_path);
    Letterbox lb = letterbox_fit(img.width, img.height, cfg.input_width, cfg.input_height);
    auto out = std::make_shared<Letterboxed>();
    out->image = letterbox_image(img, lb, 0.f);
    const Annotation& a = e.annotation;
    for (size_t k = 0; k < a.points.size(); ++k) {
      const bool ok = a.visible[k] && std::isfinite(a.points[k][0]) && std::isfinite(a.points[k][1]);
      out->points.push_back(ok ? letterbox_forward(lb, a.points[k]) : Point2{NAN, NAN});
      out->visible.push_back(ok);
    }
    if (cfg.cache_images) {
      std::lock_guard<std::mutex> lock(mu);
      cache[index] = out;
    }
    return out;
  }
};

}  // namespace

SampleFn spine_sample_fn(std::vector<DatasetEntry> entries, const Schema& schema, const SpineSampleConfig& config) {
  SM_CHECK(!entries.empty(), "spine samples: the dataset is empty");
  for (const DatasetEntry& e : entries)
    SM_CHECK(e.annotation.schema == schema.name && int(e.annotation.points.size()) == schema.landmark_count(),
             e.source << ": schema '" << e.annotation.schema << "' does not match the training schema '" << schema.name << "'");
  auto src = std::make_shared<SampleSource>();
  src->entries = std::move(entries);
  src->schema = schema;
  src->cfg = config;
  src->cache.resize(src->entries.size());
  return [src](uint64_t epoch, uint64_t index) {
    SM_CHECK(index < src->entries.size(), "spine samples: index " << index << " out of range");
    std::shared_ptr<const Letterboxed> lb = src->load(index);
    Image image = lb->image;
    std::vector<Point2> points = lb->points;
    std::vector<bool> visible = lb->visible;
    if (src->cfg.augment) {
      Augmented a = augment_apply(image, points, visible, src->schema, src->cfg.augment_options, src->cfg.seed, epoch, index);
      image = std::move(a.image);
      points = std::move(a.points);
      visible = std::move(a.visible);
    }
    if (src->cfg.vertebra_centres) {
      for (size_t k = 0; k < points.size(); ++k)
        if (!visible[k]) points[k] = {NAN, NAN};
      points = vertebra_centres(src->schema, points);
      visible.assign(points.size(), true);
    }
    // Per-image standardisation (method.md §5), exactly as the pipeline does it.
    image_standardise(image);
    Sample s;
    s.image = std::move(image.data);
    for (size_t k = 0; k < points.size(); ++k) {
      const bool ok = visible[k] && std::isfinite(points[k][0]);
      s.targets.push_back(ok ? float(dsnt_normalise(points[k][0], image.width)) : 0.f);
      s.targets.push_back(ok ? float(dsnt_normalise(points[k][1], image.height)) : 0.f);
      s.visible.push_back(ok ? 1.f : 0.f);
    }
    return s;
  };
}

LoaderConfig spine_loader_config(const SpineSampleConfig& config, const Schema& schema, uint64_t size, int batch) {
  LoaderConfig c;
  c.size = size;
  c.batch = batch;
  c.channels = 1;
  c.height = config.input_height;
  c.width = config.input_width;
  c.landmarks = config.vertebra_centres ? schema.vertebra_count() : schema.landmark_count();
  c.seed = config.seed;
  return c;
}

}  // namespace sm
