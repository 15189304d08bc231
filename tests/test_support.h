// Helpers shared by the doctest programs: a scratch folder per test that removes itself.
#pragma once
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

namespace sm::test {

// <tmp>/spinemark_test_<name>_<pid>, created empty; removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("spinemark_test_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace sm::test
