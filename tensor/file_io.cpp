// Atomic whole-file writes and whole-file reads (see file_io.h).
#include "tensor/file_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/check.h"

namespace sm {

void throw_error(const char* file, int line, const std::string& message) {
  const char* base = std::strrchr(file, '/');
  std::ostringstream os;
  os << message << " [" << (base ? base + 1 : file) << ":" << line << "]";
  throw Error(os.str());
}

void file_write_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  SM_CHECK(fd >= 0, "cannot create '" << tmp << "': " << std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      SM_FAIL("cannot write '" << path << "': " << std::strerror(err) << " (nothing was replaced)");
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    SM_FAIL("cannot flush '" << path << "': " << std::strerror(err) << " (nothing was replaced)");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    SM_FAIL("cannot rename '" << tmp << "' to '" << path << "': " << std::strerror(err));
  }
}

std::string file_read_all(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  SM_CHECK(f, "cannot open '" << path << "': " << std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool bad = std::ferror(f);
  std::fclose(f);
  SM_CHECK(!bad, "error reading '" << path << "'");
  return out;
}

namespace {

// The pid of a `<name>.tmp.<pid>` entry, or 0 when the name is not of that form.
pid_t tmp_owner_pid(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0 || at + 5 >= name.size()) return 0;
  long long pid = 0;
  for (size_t i = at + 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || pid > 1'000'000'000) return 0;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid_t(pid);
}

// kill(pid, 0) delivers nothing; it fails with ESRCH only when no such process exists (EPERM
// means it exists but belongs to someone else: not ours to clean up).
bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace

std::vector<std::string> file_tmp_stale_remove(const std::string& folder) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) return removed;
  std::vector<std::filesystem::path> stale;
  for (const auto& e : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    const pid_t pid = tmp_owner_pid(name);
    if (pid > 0 && !process_alive(pid)) stale.push_back(e.path());
  }
  for (const auto& p : stale) {
    std::filesystem::remove_all(p, ec);
    if (!ec) removed.push_back(p.filename().string());
  }
  return removed;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace sm
