// Full-resolution films of a dataset kept in memory after their first read: refinement crops
// are cut from the original image (method.md §5), and decoding a large JPEG for every crop would
// cost far more than the crop. Thread-safe; a film is read at most once.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "models/image/image.h"
#include "train/data/dataset.h"

namespace sm {

class FilmCache {
 public:
  explicit FilmCache(std::vector<DatasetEntry> entries);
  std::shared_ptr<const Image> get(size_t index);
  const DatasetEntry& entry(size_t index) const { return entries_.at(index); }
  size_t size() const { return entries_.size(); }
  const std::vector<DatasetEntry>& entries() const { return entries_; }

 private:
  std::vector<DatasetEntry> entries_;
  std::vector<std::shared_ptr<const Image>> films_;
  std::mutex mu_;
};

}  // namespace sm
