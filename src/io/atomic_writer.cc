// AtomicWriter, AtomicDir and what keeps them safe: unique O_EXCL temporaries, flocks
// that tell a dead writer's leftovers from a live one's, signal cleanup, the
// --overwrite rules and fault injection for the reliability tests.
#include "io/atomic_writer.h"

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

namespace {

std::string Errno(int e) { return std::strerror(e); }

std::string Human(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", double(b) / double(1ull << 10));
  return fmt::format("{} B", b);
}

// ---- fault injection -------------------------------------------------------------

std::atomic<long> g_points{0};
long g_crash_at = 0;
int g_crash_signal = SIGKILL;
const char* g_count_file = nullptr;

void WriteCrashCount() {
  if (g_count_file == nullptr) return;
  if (FILE* f = std::fopen(g_count_file, "w")) {
    std::fprintf(f, "%ld\n", g_points.load());
    std::fclose(f);
  }
}

bool ReadCrashEnv() {
  if (const char* at = std::getenv("NIBBLE_CRASH_AT"); at != nullptr && at[0] != '\0') g_crash_at = std::atol(at);
  if (const char* sig = std::getenv("NIBBLE_CRASH_SIGNAL"); sig != nullptr) {
    const std::string_view s(sig);
    g_crash_signal = s == "INT" ? SIGINT : s == "TERM" ? SIGTERM : s == "HUP" ? SIGHUP : SIGKILL;
  }
  if (const char* f = std::getenv("NIBBLE_CRASH_COUNT"); f != nullptr && f[0] != '\0') {
    g_count_file = f;
    std::atexit(WriteCrashCount);
  }
  return g_crash_at > 0 || g_count_file != nullptr;
}

// ---- temporary names ---------------------------------------------------------------

std::atomic<uint64_t> g_test_nonce{0};

uint64_t NextNonce() {
  if (uint64_t n = g_test_nonce.load(); n != 0) return g_test_nonce.fetch_add(1);
  uint64_t r = 0;
  if (::getrandom(&r, sizeof(r), 0) != static_cast<ssize_t>(sizeof(r)))
    r = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(std::rand());
  return r;
}

std::string StripSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string ParentOf(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

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

// ---- what nibble may delete inside a directory it replaced or left behind --------------

// Names a nibble or Hugging Face model directory holds and nibble may replace. Plain
// comparisons only: the signal handler calls it.
bool IsModelDirEntry(std::string_view n) {
  static constexpr std::string_view kNames[] = {
      "config.json",          "generation_config.json", "model.safetensors", "model.safetensors.index.json",
      "tokenizer.json",       "tokenizer_config.json",  "tokenizer.model",   "special_tokens_map.json",
      "added_tokens.json",    "chat_template.jinja"};
  for (std::string_view k : kNames)
    if (n == k) return true;
  // model-00001-of-00003.safetensors
  if (n.size() == std::string_view("model-00001-of-00003.safetensors").size() && n.starts_with("model-") &&
      n.ends_with(".safetensors") && n.substr(11, 4) == "-of-") {
    for (size_t i : {6u, 7u, 8u, 9u, 10u, 15u, 16u, 17u, 18u, 19u})
      if (n[i] < '0' || n[i] > '9') return false;
    return true;
  }
  return false;
}

// A model file, or a file writer's temporary of one ("model.safetensors.nibble-tmp-...").
bool IsRemovableEntry(std::string_view n) {
  const size_t t = n.find(".nibble-tmp-");
  return IsModelDirEntry(t == std::string_view::npos ? n : n.substr(0, t));
}

// Removes the model files (IsRemovableEntry, regular files) of a directory nibble made or
// replaced, then the directory. True when it is gone; false when something else is in it
// (then it is left as it is, for the user to look at).
bool RemoveModelDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return errno == ENOENT;
  const int dfd = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name == "." || name == ".." || !IsRemovableEntry(name)) continue;
    struct stat st {};
    if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) ::unlinkat(dfd, e->d_name, 0);
  }
  ::closedir(d);
  return ::rmdir(path.c_str()) == 0;
}

// flock on a temporary this process just created. Another process's stale-temporary
// check may hold it for an instant: retried for up to a second.
void LockTemporary(int fd, const std::string& path) {
  for (int i = 0; i < 1000; ++i) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK && errno != EINTR) break;
    const struct timespec ms = {0, 1000000};
    ::nanosleep(&ms, nullptr);
  }
  throw IoError(fmt::format("{}: cannot lock the temporary: {}", path, Errno(errno)));
}

// ---- signal cleanup -----------------------------------------------------------------
// Fixed slots a signal handler can read without locks or allocation: state 1 = live.

constexpr int kSlots = 16;
struct Slot {
  std::atomic<int> state{0};  // 0 free, 2 being filled, 1 live
  bool dir = false;
  char path[4096] = {};
};
Slot g_slots[kSlots];
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_old_actions[3];
std::once_flag g_handlers_once;

// Removes a flat directory with async-signal-safe calls only (getdents64, unlinkat).
void RemoveFlatDirSignalSafe(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) static char buf[8192];
  for (int pass = 0; pass < 4; ++pass) {
    bool removed = false;
    ::lseek(fd, 0, SEEK_SET);
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof(buf));
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const char* rec = buf + off;
        unsigned short reclen;
        std::memcpy(&reclen, rec + 16, sizeof(reclen));
        const char* name = rec + 19;
        if (reclen == 0) break;
        if (IsRemovableEntry(name)) removed |= ::unlinkat(fd, name, 0) == 0;
        off += reclen;
      }
    }
    if (!removed) break;
  }
  ::close(fd);
  ::rmdir(path);
}

// The thread inside a Commit's rename or exchange (0: none). A signal handler on another
// thread waits for it to finish (up to 2 s), so it never removes a directory by a name
// that is being swapped; on the committing thread itself nothing is being swapped.
std::atomic<long> g_committing_tid{0};

struct CommitScope {
  CommitScope() { g_committing_tid.store(::syscall(SYS_gettid)); }
  ~CommitScope() { g_committing_tid.store(0); }
};

void CleanupOnSignal(int sig) {
  const int saved = errno;
  const long self = ::syscall(SYS_gettid);
  for (int i = 0; i < 2000; ++i) {
    const long c = g_committing_tid.load();
    if (c == 0 || c == self) break;
    const struct timespec ms = {0, 1000000};
    ::nanosleep(&ms, nullptr);
  }
  for (Slot& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) != 1) continue;
    if (s.dir) {
      RemoveFlatDirSignalSafe(s.path);
    } else {
      ::unlink(s.path);
    }
  }
  // Die of the same signal: the default action comes back and the re-raised signal is
  // delivered when this handler returns.
  for (size_t i = 0; i < std::size(kSignals); ++i)
    if (kSignals[i] == sig) ::sigaction(sig, &g_old_actions[i], nullptr);
  ::raise(sig);
  errno = saved;
}

void InstallHandlers() {
  for (size_t i = 0; i < std::size(kSignals); ++i) {
    struct sigaction old {};
    ::sigaction(kSignals[i], nullptr, &old);
    g_old_actions[i] = old;
    // Only where the signal would kill the process anyway: an ignored SIGHUP (nohup) or
    // a program's own handler is left alone.
    if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO) != 0) continue;
    struct sigaction sa {};
    sa.sa_handler = CleanupOnSignal;
    sigemptyset(&sa.sa_mask);
    for (int other : kSignals) sigaddset(&sa.sa_mask, other);  // no re-entry from a second signal
    sa.sa_flags = 0;
    ::sigaction(kSignals[i], &sa, nullptr);
  }
}

int RegisterTemp(const std::string& path, bool dir) {
  std::call_once(g_handlers_once, InstallHandlers);
  if (path.size() >= sizeof(Slot::path)) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (!g_slots[i].state.compare_exchange_strong(expected, 2)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].dir = dir;
    g_slots[i].state.store(1, std::memory_order_release);
    return i;
  }
  return -1;  // more than kSlots live outputs: this one is left to the next run's cleanup
}

void UnregisterTemp(int& slot) {
  if (slot >= 0) g_slots[slot].state.store(0, std::memory_order_release);
  slot = -1;
}

// ---- the --overwrite rules -------------------------------------------------------------

bool IsAncestorOrSelf(const fs::path& a, const fs::path& b) {  // both canonical
  auto ai = a.begin(), bi = b.begin();
  for (; ai != a.end(); ++ai, ++bi) {
    if (bi == b.end() || *ai != *bi) return false;
  }
  return true;
}

// The checks on where OUT is (the same for an empty directory and a full one).
void CheckLocation(const std::string& out, const std::vector<std::string>& inputs) {
  const std::string last = fs::path(out).filename().string();
  if (last == "." || last == "..")
    throw ConfigError(fmt::format("{}: refusing to replace a directory named by '.' or '..'; give its own name", out));
  std::error_code ec;
  const fs::path canon = fs::canonical(out, ec);
  if (ec) throw IoError(fmt::format("{}: cannot resolve the path: {}", out, ec.message()));
  if (canon == canon.root_path()) throw ConfigError(fmt::format("{}: refusing to replace the root directory", out));
  const fs::path cwd = fs::canonical(fs::current_path(ec), ec);
  if (!ec && IsAncestorOrSelf(canon, cwd))
    throw ConfigError(fmt::format("{}: refusing to replace the current directory or one of its parents ({})", out,
                                  canon.string()));
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    const fs::path h = fs::canonical(home, ec);
    if (!ec && IsAncestorOrSelf(canon, h))
      throw ConfigError(fmt::format("{}: refusing to replace the home directory or one of its parents ({})", out,
                                    canon.string()));
  }
  for (const std::string& in : inputs) {
    const fs::path ci = fs::canonical(in, ec);
    if (!ec && IsAncestorOrSelf(canon, ci))
      throw ConfigError(fmt::format("{}: refusing to replace it: it is or holds the input {}", out, in));
  }
}

bool IsEmptyDir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(fs::symlink_status(path, ec)) && fs::is_empty(path, ec) && !ec;
}

}  // namespace

void CrashPoint() {
  static const bool on = ReadCrashEnv();
  if (!on) return;
  const long n = g_points.fetch_add(1) + 1;
  if (n == g_crash_at) ::raise(g_crash_signal);  // this thread: a handler runs before raise returns
}

std::string TempNameFor(const std::string& out, uint64_t nonce) {
  return fmt::format("{}.nibble-tmp-{}-{:012x}", StripSlashes(out), ::getpid(), nonce & 0xFFFFFFFFFFFFull);
}

void SetTempNonceForTesting(uint64_t first) { g_test_nonce.store(first); }

void CheckNotAnInput(const std::string& out, const std::vector<std::string>& inputs) {
  std::error_code ec;
  const fs::path parent = fs::weakly_canonical(fs::absolute(out, ec).parent_path(), ec);
  for (const std::string& in : inputs) {
    if (in.empty()) continue;
    std::error_code e1;
    if (fs::exists(out, e1) && fs::exists(in, e1) && fs::equivalent(in, out, e1))
      throw ConfigError(fmt::format("{}: is the input {}; write the output elsewhere", out, in));
    fs::path dir;
    if (fs::is_directory(in, e1)) {
      dir = in;
    } else if (std::string_view(in).ends_with(".index.json")) {
      dir = fs::path(in).parent_path().empty() ? fs::path(".") : fs::path(in).parent_path();
    } else {
      continue;
    }
    // A new file beside the model's is harmless; replacing one of them is not.
    const fs::path cdir = fs::canonical(dir, e1);
    if (!e1 && !ec && fs::exists(fs::symlink_status(out, e1)) && IsAncestorOrSelf(cdir, parent))
      throw ConfigError(fmt::format("{}: is a file of the input model directory {}; write the output elsewhere", out,
                                    dir.string()));
  }
}

void CheckOverwriteTarget(const std::string& out_in, const std::vector<std::string>& inputs) {
  const std::string out = StripSlashes(out_in);
  struct stat st {};
  if (::lstat(out.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw IoError(fmt::format("{}: {}", out, Errno(errno)));
  }
  if (S_ISLNK(st.st_mode))
    throw ConfigError(fmt::format("{}: is a symbolic link; --overwrite replaces only a real directory (give the path "
                                  "it points to)",
                                  out));
  if (!S_ISDIR(st.st_mode)) throw ConfigError(fmt::format("{}: exists and is not a directory", out));
  CheckLocation(out, inputs);
  bool has_config = false, has_model = false;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    if (!IsModelDirEntry(name))
      throw ConfigError(fmt::format("{}: holds '{}', which nibble does not write; --overwrite replaces only a model "
                                    "directory of config, tokenizer and model.safetensors files (move '{}' away or "
                                    "choose another OUT)",
                                    out, name, name));
    if (!e.is_regular_file(ec) || e.is_symlink(ec))
      throw ConfigError(fmt::format("{}: holds '{}', which is not a regular file; --overwrite will not replace it", out,
                                    name));
    has_config |= name == "config.json";
    has_model |= name.ends_with(".safetensors") || name == "model.safetensors.index.json";
  }
  if (ec) throw IoError(fmt::format("{}: cannot list the directory: {}", out, ec.message()));
  if (!has_config || !has_model)
    throw ConfigError(fmt::format("{}: does not look like a model directory (no config.json with model.safetensors "
                                  "or an index); --overwrite replaces only those",
                                  out));
}

void CheckFreeSpace(const std::string& out, uint64_t bytes, std::string_view what) {
  struct stat st {};
  const std::string probe = ::stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? out : ParentOf(StripSlashes(out));
  struct statvfs vfs {};
  if (::statvfs(probe.c_str(), &vfs) != 0) return;  // nothing to go on; the writes will tell
  const uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
  if (bytes > avail)
    throw IoError(fmt::format("{}: needs {} for {}, but the file system has {} free", out, Human(bytes), what,
                              Human(avail)));
}

std::optional<long> TemporaryOwner(std::string_view base, std::string_view name) {
  if (base.empty() || !name.starts_with(base)) return std::nullopt;
  std::string_view rest = name.substr(base.size());
  if (!rest.starts_with(".nibble-tmp-") && !rest.starts_with(".nibble-old-")) return std::nullopt;
  rest.remove_prefix(std::string_view(".nibble-tmp-").size());
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 9 || dash + 1 == rest.size() || rest[0] == '0')
    return std::nullopt;
  long pid = 0;
  for (char c : rest.substr(0, dash)) {
    if (c < '0' || c > '9') return std::nullopt;
    pid = pid * 10 + (c - '0');
  }
  for (char c : rest.substr(dash + 1))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  if (pid <= 0) return std::nullopt;
  return pid;
}

std::vector<std::string> RemoveStaleTemporaries(const std::string& out_in) {
  const std::string out = StripSlashes(out_in);
  const std::string dir = ParentOf(out);
  const std::string base = fs::path(out).filename().string();
  std::vector<std::string> notes;
  if (base.empty() || base == "." || base == "..") return notes;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return notes;
  const int dfd = ::dirfd(d);
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d))
    if (TemporaryOwner(base, e->d_name)) names.emplace_back(e->d_name);
  for (const std::string& name : names) {
    const std::optional<long> owner = TemporaryOwner(base, name);
    if (!owner || *owner == ::getpid()) continue;
    const long pid = *owner;
    struct stat st {};
    if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode) || st.st_uid != ::geteuid())
      continue;
    const int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    // A live writer holds the flock; the pid check covers a writer between creating
    // its temporary and locking it.
    const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    const bool alive = ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
    if (!locked && !alive) {
      const std::string path = (fs::path(dir) / name).string();
      // A replacement without RENAME_EXCHANGE that died between its two renames: the
      // old output is complete and OUT is missing, so the old one goes back.
      struct stat out_st {};
      if (name.starts_with(base + ".nibble-old-") && ::lstat(out.c_str(), &out_st) != 0 && errno == ENOENT &&
          ::renameat(dfd, name.c_str(), AT_FDCWD, out.c_str()) == 0) {
        notes.push_back(fmt::format("restored {} from {}, the old output process {} was replacing when it stopped",
                                    out, path, pid));
        ::close(fd);
        continue;
      }
      uint64_t size = 0;
      std::error_code ec;
      if (S_ISDIR(st.st_mode)) {
        for (const fs::directory_entry& e : fs::directory_iterator(path, ec))
          if (e.is_regular_file(ec)) size += e.file_size(ec);
        if (!RemoveModelDir(path)) {
          notes.push_back(fmt::format("left {} in place: a temporary output of process {}, which no longer runs, "
                                      "but it holds files nibble did not write",
                                      path, pid));
          ::close(fd);
          continue;
        }
      } else {
        size = static_cast<uint64_t>(st.st_size);
        if (::unlinkat(dfd, name.c_str(), 0) != 0) ec = std::error_code(errno, std::generic_category());
      }
      if (!ec)
        notes.push_back(fmt::format("removed {} ({}), a temporary output left by process {}, which no longer runs",
                                    path, Human(size), pid));
    }
    ::close(fd);
  }
  ::closedir(d);
  return notes;
}

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
