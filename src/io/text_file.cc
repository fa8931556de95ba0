// Bounded reads of regular files and JSON objects with located errors.
#include "io/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/core.h>

#include "nibble/error.h"

namespace nibble::io {
namespace {

const char* KindName(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

}  // namespace

void CheckPathKind(const std::string& path, std::string_view what, bool allow_dir) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IoError(fmt::format("{}: {}: {}", path, what, std::strerror(errno)));
  if (S_ISREG(st.st_mode) || (allow_dir && S_ISDIR(st.st_mode))) return;
  throw IoError(fmt::format("{}: {}: is {}; expected a regular file{}", path, what, KindName(st.st_mode),
                            allow_dir ? " or a directory" : ""));
}

std::string ReadRegularFile(const std::string& path, std::string_view what, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO without a writer returns at once, and fstat refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open the {}: {}", path, what, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int e = errno;
    ::close(fd);
    if (!S_ISREG(st.st_mode) && st.st_mode != 0)
      throw IoError(fmt::format("{}: the {} is {}; expected a regular file", path, what, KindName(st.st_mode)));
    throw IoError(fmt::format("{}: cannot stat the {}: {}", path, what, std::strerror(e)));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw IoError(fmt::format("{}: the {} has {} bytes, more than the limit of {} MiB", path, what, st.st_size,
                              max_bytes >> 20));
  }
  std::string text;
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw IoError(fmt::format("{}: cannot read the {}: {}", path, what, std::strerror(e)));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) {  // it grew while being read
      ::close(fd);
      throw IoError(fmt::format("{}: the {} is larger than the limit of {} MiB", path, what, max_bytes >> 20));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

nlohmann::json ReadJsonObject(const std::string& path, std::string_view what) {
  return ParseJsonObject(ReadRegularFile(path, what, kMaxConfigFileBytes), path, what);
}

nlohmann::json ParseJsonObject(std::string_view text, const std::string& path, std::string_view what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based; name the line too, which is what an editor shows.
    const size_t at = e.byte > 0 ? e.byte - 1 : 0;
    size_t line = 1;
    for (size_t i = 0; i < at && i < text.size(); ++i) line += text[i] == '\n';
    std::string msg = e.what();
    if (const size_t p = msg.find("syntax error"); p != std::string::npos) msg = msg.substr(p);
    throw FormatError(fmt::format("{}: {} is not valid JSON (line {}, byte {}): {}", path, what, line, e.byte, msg));
  } catch (const nlohmann::json::exception& e) {  // out_of_range: a number past double ("1E999"), found by fuzzing
    throw FormatError(fmt::format("{}: {} is not valid JSON: {}", path, what, e.what()));
  }
  if (!j.is_object())
    throw FormatError(fmt::format("{}: {}: expected a JSON object at the top level, found {}", path, what, j.type_name()));
  return j;
}

std::optional<nlohmann::json> ReadJsonObjectIfExists(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  return ReadJsonObject(path, what);
}

}  // namespace nibble::io
