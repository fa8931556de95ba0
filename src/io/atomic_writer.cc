// AtomicWriter and AtomicDir: a unique O_EXCL temporary, fsync, rename (or one
// renameat2 exchange for a directory), fsync of the parent. The temporaries' lifecycle
// is in temporaries.cc, the --overwrite rules in overwrite_rules.cc.
#include "io/atomic_writer.h"
#include "io/atomic_writer_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/core.h>

#include "nibble/error.h"

namespace nibble::io {
namespace fs = std::filesystem;
using namespace detail;

namespace {

// fsync a directory so a rename in it survives a power cut. EINVAL: the file system
// does not sync directories (nothing to do).
void FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open the directory to sync it: {}", dir, Errno(errno)));
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) throw IoError(fmt::format("{}: fsync of the directory failed: {}", dir, Errno(e)));
}

// NIBBLE_TEST_RENAME_FALLBACK=1 makes renameat2 fail with EINVAL, as on a file system
// without its flags, so the reliability suite runs the fallbacks end to end.
bool ForceRenameFallback() {
  static const bool on = [] {
    const char* v = std::getenv("NIBBLE_TEST_RENAME_FALLBACK");
    return v != nullptr && std::string_view(v) == "1";
  }();
  return on;
}

int Renameat2(const std::string& from, const std::string& to, unsigned flags) {
  if (ForceRenameFallback()) {
    errno = EINVAL;
    return -1;
  }
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}

// renameat2 with a fallback where the file system lacks the flag (EINVAL): for
// RENAME_NOREPLACE link()+unlink() for files, a checked rename() for directories.
int RenameNoReplace(const std::string& from, const std::string& to, bool is_dir) {
  if (Renameat2(from, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (!is_dir) {
    if (::link(from.c_str(), to.c_str()) != 0) return -1;
    ::unlink(from.c_str());
    return 0;
  }
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::rename(from.c_str(), to.c_str());
}

}  // namespace

// ---- AtomicWriter ----------------------------------------------------------------------

AtomicWriter::AtomicWriter(std::string path, Existing existing) : path_(std::move(path)), existing_(existing) {
  if (path_.empty()) throw ConfigError("output path is empty");
  for (const std::string& note : RemoveStaleTemporaries(path_)) std::fprintf(stderr, "nibble: %s\n", note.c_str());
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw ConfigError(fmt::format("{}: is a directory; expected a file name", path_));
    if (existing_ == Existing::kRefuse)
      throw ConfigError(fmt::format("{}: already exists (pass --overwrite to replace it)", path_));
  } else if (errno != ENOENT) {
    throw IoError(fmt::format("{}: {}", path_, Errno(errno)));
  }
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    tmp_path_ = TempNameFor(path_, NextNonce());
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) throw IoError(fmt::format("{}: cannot create: {}", tmp_path_, Errno(errno)));
  }
  if (fd_ < 0) throw IoError(fmt::format("{}: cannot create a temporary beside it: 16 names were taken", path_));
  try {
    LockTemporary(fd_, tmp_path_);
  } catch (...) {
    ::unlink(tmp_path_.c_str());
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  slot_ = RegisterTemp(tmp_path_, false);
  CrashPoint();
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) {
    ::unlink(tmp_path_.c_str());
    ::close(fd_);
  }
  UnregisterTemp(slot_);
}

void AtomicWriter::Write(std::span<const uint8_t> bytes) {
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(fmt::format("{}: write failed: {}", tmp_path_, Errno(errno)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  written_ += bytes.size();
  CrashPoint();
}

void AtomicWriter::WriteZeros(size_t n) {
  static const std::vector<uint8_t> zeros(4096, 0);
  while (n > 0) {
    const size_t k = n < zeros.size() ? n : zeros.size();
    Write({zeros.data(), k});
    n -= k;
  }
}

void AtomicWriter::Commit() {
  if (::fsync(fd_) != 0) throw IoError(fmt::format("{}: fsync failed: {}", tmp_path_, Errno(errno)));
  CrashPoint();
  CommitScope scope;
  if (existing_ == Existing::kRefuse) {
    if (RenameNoReplace(tmp_path_, path_, /*is_dir=*/false) != 0) {
      if (errno == EEXIST)
        throw ConfigError(fmt::format("{}: appeared while writing; not replaced (pass --overwrite to replace it)", path_));
      throw IoError(fmt::format("{}: cannot rename {} onto it: {}", path_, tmp_path_, Errno(errno)));
    }
  } else if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    throw IoError(fmt::format("{}: cannot rename {} onto it: {}", path_, tmp_path_, Errno(errno)));
  }
  // In place: from here the destructor must not unlink the (now moved) temporary.
  const int fd = fd_;
  fd_ = -1;
  UnregisterTemp(slot_);
  CrashPoint();
  const int rc = ::close(fd);
  if (rc != 0) throw IoError(fmt::format("{}: close failed: {}", path_, Errno(errno)));
  FsyncDir(ParentOf(path_));
}

// ---- AtomicDir -------------------------------------------------------------------------

AtomicDir::AtomicDir(std::string out, bool overwrite, std::vector<std::string> inputs)
    : out_(StripSlashes(std::move(out))), inputs_(std::move(inputs)), overwrite_(overwrite) {
  if (out_.empty()) throw ConfigError("output directory path is empty");
  // First, so an old output a crashed replacement moved aside is back before OUT is checked.
  for (const std::string& note : RemoveStaleTemporaries(out_)) std::fprintf(stderr, "nibble: %s\n", note.c_str());
  struct stat st {};
  if (::lstat(out_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode) && IsEmptyDir(out_)) {
      CheckLocation(out_, inputs_);  // an empty directory is filled without --overwrite
    } else if (!overwrite_) {
      throw ConfigError(fmt::format("{}: already exists (pass --overwrite to replace it)", out_));
    } else {
      CheckOverwriteTarget(out_, inputs_);
    }
  } else if (errno != ENOENT) {
    throw IoError(fmt::format("{}: {}", out_, Errno(errno)));
  } else {
    const std::string last = fs::path(out_).filename().string();
    if (last == "." || last == "..") throw ConfigError(fmt::format("{}: give the output directory its own name", out_));
  }
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    tmp_ = TempNameFor(out_, NextNonce());
    if (::mkdir(tmp_.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      throw IoError(fmt::format("{}: cannot create directory: {}", tmp_, Errno(errno)));
    }
    fd_ = ::open(tmp_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) {
      const int e = errno;
      ::rmdir(tmp_.c_str());
      throw IoError(fmt::format("{}: cannot open the new directory: {}", tmp_, Errno(e)));
    }
  }
  if (fd_ < 0) throw IoError(fmt::format("{}: cannot create a temporary beside it: 16 names were taken", out_));
  try {
    LockTemporary(fd_, tmp_);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    ::rmdir(tmp_.c_str());
    throw;
  }
  slot_ = RegisterTemp(tmp_, true);
  CrashPoint();
}

AtomicDir::~AtomicDir() {
  if (!committed_ && !tmp_.empty()) RemoveModelDir(tmp_);
  if (fd_ >= 0) ::close(fd_);
  UnregisterTemp(slot_);
}

std::string AtomicDir::File(std::string_view name) const { return (fs::path(tmp_) / std::string(name)).string(); }

void AtomicDir::WriteFile(std::string_view name, std::span<const uint8_t> bytes) {
  const std::string n(name);
  const int fd = ::openat(fd_, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("{}: cannot create: {}", File(name), Errno(errno)));
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t k = ::write(fd, p, left);
    if (k < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw IoError(fmt::format("{}: write failed: {}", File(name), Errno(e)));
    }
    p += k;
    left -= static_cast<size_t>(k);
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    throw IoError(fmt::format("{}: fsync failed: {}", File(name), Errno(e)));
  }
  if (::close(fd) != 0) throw IoError(fmt::format("{}: close failed: {}", File(name), Errno(errno)));
  CrashPoint();
}

void AtomicDir::Commit() {
  if (::fsync(fd_) != 0 && errno != EINVAL) throw IoError(fmt::format("{}: fsync failed: {}", tmp_, Errno(errno)));
  CrashPoint();
  const std::string parent = ParentOf(out_);
  struct stat st {};
  const bool exists = ::lstat(out_.c_str(), &st) == 0;
  if (!exists) {
    {
      CommitScope scope;
      if (RenameNoReplace(tmp_, out_, /*is_dir=*/true) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
          throw ConfigError(
              fmt::format("{}: appeared while writing; not replaced (pass --overwrite to replace it)", out_));
        throw IoError(fmt::format("{}: cannot rename {} to it: {}", out_, tmp_, Errno(errno)));
      }
      committed_ = true;
      UnregisterTemp(slot_);
    }
    CrashPoint();
    FsyncDir(parent);
    return;
  }
  // OUT exists: it must (still) be replaceable, then the two are exchanged in one step.
  if (S_ISDIR(st.st_mode) && IsEmptyDir(out_)) {
    CheckLocation(out_, inputs_);
  } else if (!overwrite_) {
    throw ConfigError(fmt::format("{}: appeared while writing; not replaced (pass --overwrite to replace it)", out_));
  } else {
    CheckOverwriteTarget(out_, inputs_);
  }
  // What was checked is what gets replaced: the same directory (device and inode).
  auto same_as_checked = [&](const std::string& p) {
    struct stat now {};
    return ::lstat(p.c_str(), &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino;
  };
  std::string old;
  {
    CommitScope scope;
    if (Renameat2(tmp_, out_, RENAME_EXCHANGE) == 0) {
      old = tmp_;  // the temporary's name now holds the old output
      if (!same_as_checked(old)) {
        const int back = Renameat2(tmp_, out_, RENAME_EXCHANGE);
        throw ConfigError(fmt::format("{}: was replaced by another directory while nibble checked it; {}", out_,
                                      back == 0 ? "left as it was" : "the new output is at " + tmp_));
      }
    } else if (errno == EINVAL || errno == ENOSYS) {
      // No RENAME_EXCHANGE on this file system: move the old one aside first. OUT is
      // missing between these two renames (docs/ARCHITECTURE.md says so); a crash there
      // leaves the old one under .nibble-old-, which the next run puts back.
      old = fmt::format("{}.nibble-old-{}-{:012x}", out_, ::getpid(), NextNonce() & 0xFFFFFFFFFFFFull);
      UnregisterTemp(slot_);  // the temporary's name becomes OUT: a signal must not remove it
      if (::rename(out_.c_str(), old.c_str()) != 0)
        throw IoError(fmt::format("{}: cannot move the old directory aside: {}", out_, Errno(errno)));
      if (!same_as_checked(old)) {
        ::rename(old.c_str(), out_.c_str());
        throw ConfigError(fmt::format("{}: was replaced by another directory while nibble checked it; left as it was",
                                      out_));
      }
      CrashPoint();
      if (::rename(tmp_.c_str(), out_.c_str()) != 0) {
        const int e = errno;
        ::rename(old.c_str(), out_.c_str());
        throw IoError(fmt::format("{}: cannot rename {} to it: {}", out_, tmp_, Errno(e)));
      }
      slot_ = RegisterTemp(old, true);
    } else {
      throw IoError(fmt::format("{}: cannot exchange it with {}: {}", out_, tmp_, Errno(errno)));
    }
    committed_ = true;
  }
  CrashPoint();
  FsyncDir(parent);
  // The old output: only its model files are removed (the slot names it, so a signal
  // removes the same ones). Anything else someone put there keeps the directory.
  const bool removed = RemoveModelDir(old);
  UnregisterTemp(slot_);
  CrashPoint();
  if (!removed)
    std::fprintf(stderr, "nibble: warning: %s: the old output was left there: it holds files nibble did not write\n",
                 old.c_str());
  FsyncDir(parent);
}

}  // namespace nibble::io