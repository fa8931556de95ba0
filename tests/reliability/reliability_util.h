// Shared by the reliability suite (tests/reliability/*_test.cc): the real nibble binary
// run as a process (process.h), the stories260K assets it works on, and snapshots of
// what a command left on disk.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "io/gguf.h"
#include "reliability/process.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble::test {

namespace fs = std::filesystem;

// NIBBLE_TEST_CLI runs the suite against another build (an older commit, to see which
// tests catch its defects).
inline const std::string kCli = std::getenv("NIBBLE_TEST_CLI") ? std::getenv("NIBBLE_TEST_CLI") : NIBBLE_CLI_PATH;
inline std::string Gguf() { return SourcePath("assets/stories260K/stories260K.gguf"); }
inline std::string Bin() { return SourcePath("assets/stories260K/stories260K.bin"); }
inline std::string Tok() { return SourcePath("assets/stories260K/tok512.bin"); }
inline std::string Text() { return SourcePath("assets/tinystories-excerpt/tinystories_val_excerpt.txt"); }

inline std::vector<std::string> Cmd(std::vector<std::string> args) {
  args.insert(args.begin(), kCli);
  return args;
}

inline ProcResult Nibble(std::vector<std::string> args, ProcOptions o = {}) {
  if (o.timeout_s == 60) o.timeout_s = 120;
  return Run(Cmd(std::move(args)), o);
}

inline int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
inline bool Has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

inline std::string ReadBytes(const std::string& p) { return Proc::Slurp(p); }
inline void Put(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// A file's bytes, or a directory's files by name; {} for nothing there.
using Snapshot = std::map<std::string, std::string>;
inline Snapshot Snap(const std::string& p) {
  Snapshot s;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(p, ec);
  if (fs::is_regular_file(st)) {
    s[""] = ReadBytes(p);
  } else if (fs::is_directory(st)) {
    s["/"] = "";  // an empty directory is not "absent"
    for (const auto& e : fs::directory_iterator(p)) s[e.path().filename().string()] = ReadBytes(e.path().string());
  } else if (fs::exists(st)) {
    s["?"] = "not a file or directory";
  }
  return s;
}

// A failure message that names what a snapshot holds.
inline std::string Describe(const Snapshot& s) {
  if (s.empty()) return "absent";
  std::string d;
  for (const auto& [k, v] : s) d += (k.empty() ? "file" : k) + "(" + std::to_string(v.size()) + " B) ";
  return d;
}

// One error line, naming `what`.
inline void ExpectOneError(const ProcResult& r, const std::string& what, const std::string& context) {
  EXPECT_EQ(r.exit_code, 1) << context << "\n" << r.err;
  EXPECT_EQ(r.signal, 0) << context;
  EXPECT_FALSE(r.timed_out) << context;
  EXPECT_TRUE(Has(r.err, what)) << context << ": expected '" << what << "' in:\n" << r.err;
  EXPECT_TRUE(Has(r.err, "nibble: error: ")) << context << "\n" << r.err;
}

}  // namespace nibble::test
