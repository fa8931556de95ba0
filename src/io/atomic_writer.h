// The one door every nibble output goes through (docs/ARCHITECTURE.md, "Writing to a
// user's disk"):
//   * AtomicWriter: one file. A unique temporary in OUT's directory, created with
//     O_CREAT|O_EXCL|O_NOFOLLOW, written, fsynced, renamed onto OUT, the directory fsynced.
//   * AtomicDir: one directory (a Hugging Face checkpoint). A unique temporary directory
//     beside OUT; on Commit the old OUT (if --overwrite) is exchanged with it in one
//     renameat2(RENAME_EXCHANGE) and only then deleted.
// At every instant OUT is absent, the complete old output or the complete new one.
// Temporaries are named "<OUT>.nibble-tmp-<pid>-<nonce>" and hold an flock while their
// writer lives; SIGINT/SIGTERM/SIGHUP remove them before the process dies, and the next
// writer to the same OUT removes those of processes that no longer run (kill -9).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::io {

// What a writer does when OUT already exists.
enum class Existing {
  kReplace,  // replace it atomically (rename over it)
  kRefuse,   // ConfigError, also when OUT appears while writing (renameat2 RENAME_NOREPLACE)
};

class AtomicWriter {
 public:
  // Throws ConfigError when OUT exists and `existing` is kRefuse, or OUT is a directory;
  // IoError when the temporary cannot be created.
  AtomicWriter(std::string path, Existing existing);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void Write(std::span<const uint8_t> bytes);
  void Write(const void* data, size_t n) { Write({static_cast<const uint8_t*>(data), n}); }
  void WriteZeros(size_t n);
  uint64_t bytes_written() const { return written_; }
  // fsync, rename onto the final path, fsync the directory. Throws IoError on failure
  // (the temporary is removed), ConfigError when kRefuse and OUT appeared meanwhile.
  void Commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  Existing existing_;
  int fd_ = -1;
  int slot_ = -1;  // the signal-cleanup registry entry
  uint64_t written_ = 0;
};

class AtomicDir {
 public:
  // `out`: the directory to produce. Without `overwrite` an existing OUT is a
  // ConfigError. With it, OUT must pass CheckOverwriteTarget(out, inputs).
  AtomicDir(std::string out, bool overwrite, std::vector<std::string> inputs);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  const std::string& out() const { return out_; }
  const std::string& temp_path() const { return tmp_; }
  // Path of `name` inside the temporary directory (a plain file name, no '/').
  std::string File(std::string_view name) const;
  // Creates `name` in the temporary directory (O_EXCL|O_NOFOLLOW), writes and fsyncs it.
  void WriteFile(std::string_view name, std::span<const uint8_t> bytes);
  // fsyncs the temporary directory, puts it in place of OUT (exchanging with the old
  // one under --overwrite), deletes the old one, fsyncs the parent.
  void Commit();

 private:
  std::string out_, tmp_;
  std::vector<std::string> inputs_;
  bool overwrite_ = false, committed_ = false;
  int fd_ = -1;    // the temporary directory, flocked
  int slot_ = -1;  // the signal-cleanup registry entry
};

// Refuses (ConfigError naming the path and the reason) an OUT that --overwrite must not
// replace: a symbolic link; "/", the current directory or one of its parents, $HOME;
// IN itself or a directory holding IN; anything but a directory; a directory without
// config.json and model.safetensors(.index.json) nor adapter_config.json and
// adapter_model.safetensors; or one holding any entry nibble does not write (model files,
// config and tokenizer files of a Hugging Face checkpoint, PEFT adapter files, a
// fine-tuning run's metrics.jsonl and loss.svg).
void CheckOverwriteTarget(const std::string& out, const std::vector<std::string>& inputs);

// Refuses (ConfigError) an output file OUT that is one of `inputs`, or an existing file
// inside an input that is a directory (a model directory: its shards, config, tokenizer)
// or beside an input that is a "*.index.json" (a sharded checkpoint's files). Inputs that
// do not exist are skipped.
void CheckNotAnInput(const std::string& out, const std::vector<std::string>& inputs);

// True for a file name nibble writes into a model, adapter or fine-tuning run directory
// (and a writer's temporary of one): the names CheckOverwriteTarget accepts.
bool IsNibbleOutputName(std::string_view name);

// Removes a directory nibble wrote (a run's checkpoint-N): its nibble files, then the
// directory. False, leaving it as it is, when it holds anything else.
bool RemoveOutputDir(const std::string& path);

// IoError when the file system holding OUT (or its parent, when OUT does not exist yet)
// has fewer than `bytes` free for this user: "needs X for <what>, Y free".
void CheckFreeSpace(const std::string& out, uint64_t bytes, std::string_view what);

// Removes "<OUT>.nibble-tmp-<pid>-*" entries left by processes that no longer run (their
// flock is free and the pid is gone) and returns one line per removal for the user.
std::vector<std::string> RemoveStaleTemporaries(const std::string& out);

// The pid in a temporary's name ("<base>.nibble-tmp-<pid>-<hex>" or
// "<base>.nibble-old-<pid>-<hex>"), or nullopt when `name` is not one of OUT's temporaries.
std::optional<long> TemporaryOwner(std::string_view base, std::string_view name);

// The temporary name for OUT with a given nonce: "<OUT>.nibble-tmp-<pid>-<nonce hex>".
std::string TempNameFor(const std::string& out, uint64_t nonce);

// Test seam: the next temporaries use nonces first, first+1, ... instead of random ones
// (to plant symlinks at exactly the names a writer will try). 0 restores random nonces.
void SetTempNonceForTesting(uint64_t first);

// Fault injection for the reliability tests: with NIBBLE_CRASH_AT=N in the environment
// the N-th crash point the process reaches kills it with SIGKILL (NIBBLE_CRASH_SIGNAL=INT,
// TERM or HUP sends that signal instead, as Ctrl-C or kill would); with
// NIBBLE_CRASH_COUNT=FILE it writes the number of points reached to FILE at exit.
// A no-op (one relaxed load) otherwise.
void CrashPoint();

}  // namespace nibble::io
