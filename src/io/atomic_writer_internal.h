// Internals shared by the files of the one door (atomic_writer.cc, temporaries.cc,
// overwrite_rules.cc); not for use outside src/io.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::io::detail {

std::string Errno(int e);
std::string Human(uint64_t bytes);  // "1.5 MiB"

// ---- temporary names (temporaries.cc)
uint64_t NextNonce();
std::string StripSlashes(std::string p);
std::string ParentOf(const std::string& path);  // "." for a bare name

// ---- what nibble may delete (temporaries.cc)
// A name a nibble or Hugging Face model directory holds; async-signal-safe.
bool IsModelDirEntry(std::string_view name);
// A model file or a file writer's temporary of one; async-signal-safe.
bool IsRemovableEntry(std::string_view name);
// Removes the model files of a directory nibble made or replaced, then the directory;
// false (and the directory left) when something else is in it.
bool RemoveModelDir(const std::string& path);
// flock on a temporary this process just created, retried for a second.
void LockTemporary(int fd, const std::string& path);

// ---- signal cleanup (temporaries.cc)
// A live temporary the SIGINT/SIGTERM/SIGHUP handler removes; -1 when the 16 slots are
// taken (then the next run's cleanup removes it).
int RegisterTemp(const std::string& path, bool dir);
void UnregisterTemp(int& slot);
// Marks the calling thread as inside a commit's rename or exchange for its lifetime: a
// handler on another thread waits for it before removing anything.
class CommitScope {
 public:
  CommitScope();
  ~CommitScope();
  CommitScope(const CommitScope&) = delete;
  CommitScope& operator=(const CommitScope&) = delete;
};

// ---- where OUT may be (overwrite_rules.cc)
// Refuses '.'/'..', /, the current directory or a parent, $HOME or a parent, an input or
// a directory holding one (for an empty directory as for a full one).
void CheckLocation(const std::string& out, const std::vector<std::string>& inputs);
bool IsEmptyDir(const std::string& path);

}  // namespace nibble::io::detail
