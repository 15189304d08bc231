// Film cache (see film_cache.h).
#include "train/data/film_cache.h"

#include "models/image/image_io.h"
#include "tensor/check.h"

namespace sm {

FilmCache::FilmCache(std::vector<DatasetEntry> entries) : entries_(std::move(entries)), films_(entries_.size()) {}

std::shared_ptr<const Image> FilmCache::get(size_t index) {
  SM_CHECK(index < entries_.size(), "film cache: index " << index << " out of range");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (films_[index]) return films_[index];
  }
  auto film = std::make_shared<const Image>(image_read(entries_[index].image_path));  // outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (!films_[index]) films_[index] = film;
  return films_[index];
}

}  // namespace sm
