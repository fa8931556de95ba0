// The run directory of nibble finetune: checkpoints, staging, what OUT may hold.
#include "api/run_dir.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "io/atomic_writer.h"
#include "nibble/error.h"

namespace nibble::api {
namespace fs = std::filesystem;

std::optional<int64_t> CheckpointNumber(const std::string& name) {
  if (!name.starts_with("checkpoint-") || name.size() == 11 || name.size() > 30) return std::nullopt;
  int64_t n = 0;
  for (char c : name.substr(11)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::vector<std::pair<int64_t, fs::path>> Checkpoints(const std::string& out) {
  std::vector<std::pair<int64_t, fs::path>> v;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(out, ec))
    if (auto n = CheckpointNumber(e.path().filename().string()); n && e.is_directory(ec) && !e.is_symlink(ec))
      v.emplace_back(*n, e.path());
  std::sort(v.begin(), v.end());
  return v;
}

namespace {

void FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void MoveStagedFiles(const std::string& out) {
  const fs::path stage = fs::path(out) / kStage;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(stage, ec)) {
    if (!io::IsNibbleOutputName(e.path().filename().string())) continue;
    fs::rename(e.path(), fs::path(out) / e.path().filename(), ec);
    if (ec) throw IoError(fmt::format("{}: cannot move {} into place: {}", out, e.path().string(), ec.message()));
  }
  FsyncDir(out);
  if (!io::RemoveOutputDir(stage.string()))
    throw IoError(fmt::format("{}: holds files nibble did not write; left as it is", stage.string()));
}

bool PrepareRunDir(const FinetuneOptions& o, bool resuming, const std::vector<std::string>& inputs,
                   std::vector<std::string>* notes) {
  const std::string& out = o.out_dir;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  if (fs::is_symlink(st))
    throw ConfigError(fmt::format("{}: is a symbolic link; give the run directory itself", out));
  for (const std::string& in : inputs) {
    const fs::path a = fs::weakly_canonical(in, ec), b = fs::weakly_canonical(out, ec);
    const std::string as = a.string(), bs = b.string();
    if (as == bs || as.starts_with(bs + "/"))
      throw ConfigError(fmt::format("{}: holds the input {}; write the run elsewhere", out, in));
  }
  if (!fs::exists(st)) {
    fs::create_directories(out, ec);
    if (ec) throw IoError(fmt::format("{}: cannot create the run directory: {}", out, ec.message()));
    return true;
  }
  if (!fs::is_directory(st)) throw ConfigError(fmt::format("{}: exists and is not a directory", out));
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(out, ec)) names.push_back(e.path().filename().string());
  if (ec) throw IoError(fmt::format("{}: cannot list the directory: {}", out, ec.message()));
  if (names.empty()) return false;
  if (!resuming && !o.overwrite)
    throw ConfigError(fmt::format("{}: exists and is not empty; continue its run with --resume-from-checkpoint "
                                  "latest, or start over with --overwrite (replaces nibble's files only)",
                                  out));
  for (const std::string& n : names) {
    if (n.find(".nibble-tmp-") != std::string::npos || n.find(".nibble-old-") != std::string::npos) {
      const std::string base = n.substr(0, n.find(".nibble-"));
      for (const std::string& line : io::RemoveStaleTemporaries((fs::path(out) / base).string())) notes->push_back(line);
      continue;
    }
    if (CheckpointNumber(n) || n == kStage || io::IsNibbleOutputName(n)) continue;
    throw ConfigError(fmt::format("{}: holds '{}', which nibble does not write; move it away or choose another "
                                  "--output_dir",
                                  out, n));
  }
  if (fs::is_directory(fs::path(out) / kStage)) {  // a run killed while moving its final files: finish the move
    MoveStagedFiles(out);
    notes->push_back(fmt::format("{}: finished moving the previous run's final files into place", out));
  }
  if (o.overwrite && !resuming) {
    for (const auto& [n, p] : Checkpoints(out)) {
      if (!io::RemoveOutputDir(p.string()))
        throw ConfigError(fmt::format("{}: holds files nibble did not write; --overwrite leaves it", p.string()));
      notes->push_back(fmt::format("--overwrite: removed the old {}", p.filename().string()));
    }
  }
  return false;
}

std::string FindCheckpoint(const FinetuneOptions& o) {
  if (o.resume_from.empty()) return {};
  if (o.resume_from == "latest") {
    const auto v = fs::is_directory(o.out_dir) ? Checkpoints(o.out_dir) : decltype(Checkpoints(o.out_dir)){};
    for (auto it = v.rbegin(); it != v.rend(); ++it)
      if (fs::exists(it->second / "trainer_state.json")) return it->second.string();
    throw ConfigError(fmt::format("--resume-from-checkpoint latest: {} holds no checkpoint-N directory", o.out_dir));
  }
  if (!fs::is_directory(o.resume_from))
    throw ConfigError(fmt::format("--resume-from-checkpoint {}: not a directory", o.resume_from));
  return o.resume_from;
}

}  // namespace nibble::api
