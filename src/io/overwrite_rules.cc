// The --overwrite rules: where an output may go, what an existing one may be for nibble
// to replace it, that it is not an input, and that it fits on its file system.
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

bool IsAncestorOrSelf(const fs::path& a, const fs::path& b) {  // both canonical
  auto ai = a.begin(), bi = b.begin();
  for (; ai != a.end(); ++ai, ++bi) {
    if (bi == b.end() || *ai != *bi) return false;
  }
  return true;
}

}  // namespace

namespace detail {

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

}  // namespace detail

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
    has_config |= name == "config.json" || name == "adapter_config.json";
    has_model |= name.ends_with(".safetensors") || name == "model.safetensors.index.json";
  }
  if (ec) throw IoError(fmt::format("{}: cannot list the directory: {}", out, ec.message()));
  if (!has_config || !has_model)
    throw ConfigError(fmt::format("{}: does not look like a model directory (no config.json with model.safetensors "
                                  "or an index, nor a PEFT adapter); --overwrite replaces only those",
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

}  // namespace nibble::io
