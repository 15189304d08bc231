// Atomic whole-file writes and whole-file reads (see file_io.h).
#include "tensor/file_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
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

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace sm
