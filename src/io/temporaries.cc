// The temporaries of the one door: their names, the fault injection the reliability
// suite drives, the signal handler that removes live ones, and the next run's removal
// of those a dead process left (docs/ARCHITECTURE.md, "Writing to a user's disk").
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

namespace {

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

}  // namespace

namespace detail {

std::string Errno(int e) { return std::strerror(e); }

std::string Human(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", double(b) / double(1ull << 10));
  return fmt::format("{} B", b);
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

// ---- what nibble may delete inside a directory it replaced or left behind --------------

// Names a nibble or Hugging Face model (or PEFT adapter, or fine-tuning output) directory
// holds and nibble may replace. Plain
// comparisons only: the signal handler calls it.
bool IsModelDirEntry(std::string_view n) {
  static constexpr std::string_view kNames[] = {
      "config.json",          "generation_config.json", "model.safetensors", "model.safetensors.index.json",
      "tokenizer.json",       "tokenizer_config.json",  "tokenizer.model",   "special_tokens_map.json",
      "added_tokens.json",    "chat_template.jinja",    "adapter_config.json", "adapter_model.safetensors",
      "metrics.jsonl",        "loss.svg",               "optimizer.safetensors", "trainer_state.json",
      "memory.json"};
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

}  // namespace detail

namespace {
using namespace detail;

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

}  // namespace

namespace detail {

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

CommitScope::CommitScope() { g_committing_tid.store(::syscall(SYS_gettid)); }
CommitScope::~CommitScope() { g_committing_tid.store(0); }

}  // namespace detail

using namespace detail;

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

bool IsNibbleOutputName(std::string_view name) { return detail::IsRemovableEntry(name); }

bool RemoveOutputDir(const std::string& path) { return detail::RemoveModelDir(path); }

}  // namespace nibble::io
