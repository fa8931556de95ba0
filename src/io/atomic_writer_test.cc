// AtomicWriter and AtomicDir in one process: temporaries never follow a planted
// symlink (the nonce seam gives the exact names a writer tries), kRefuse holds at
// construction and at commit, --overwrite refuses what it must, stale temporaries of
// dead processes go and live ones stay, and free space is checked. The whole-binary
// checks (kill -9 at every crash point, signals, concurrent writers) are in
// tests/reliability/.
#include "io/atomic_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "nibble/error.h"
#include "util/temp_dir.h"

namespace nibble::io {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

std::string Slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void Put(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

void WriteAll(AtomicWriter& w, const std::string& text) { w.Write(text.data(), text.size()); }

// A model directory --overwrite may replace.
void MakeModelDir(const std::string& d, const std::string& tag) {
  fs::create_directories(d);
  Put(d + "/config.json", "{\"tag\": \"" + tag + "\"}");
  Put(d + "/model.safetensors", tag);
}

// Entries of `dir` whose names mark them as nibble temporaries.
int CountTemporaries(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    n += name.find(".nibble-tmp-") != std::string::npos || name.find(".nibble-old-") != std::string::npos;
  }
  return n;
}

// A pid that is not running: a child that has exited and been reaped.
long DeadPid() {
  const pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return p;
}

struct NonceScope {
  explicit NonceScope(uint64_t first) { SetTempNonceForTesting(first); }
  ~NonceScope() { SetTempNonceForTesting(0); }
};

TEST(AtomicWriter, SymlinksAtEveryTemporaryNameAreNeverFollowed) {
  TempDir dir;
  const std::string out = dir.File("out.gguf"), victim = dir.File("victim.txt");
  Put(victim, "keep");
  NonceScope nonces(1);
  // The first three names the writer will try are symlinks to the victim.
  for (uint64_t n = 1; n <= 3; ++n) fs::create_symlink(victim, TempNameFor(out, n));
  {
    AtomicWriter w(out, Existing::kReplace);
    EXPECT_EQ(w.temp_path(), TempNameFor(out, 4));
    WriteAll(w, "new bytes");
    w.Commit();
  }
  EXPECT_EQ(Slurp(victim), "keep");
  EXPECT_EQ(Slurp(out), "new bytes");
  for (uint64_t n = 1; n <= 3; ++n) EXPECT_TRUE(fs::is_symlink(TempNameFor(out, n)));  // left alone
}

TEST(AtomicWriter, SixteenTakenNamesIsAnErrorNotAWriteThroughALink) {
  TempDir dir;
  const std::string out = dir.File("out.bin"), victim = dir.File("victim.txt");
  Put(victim, "keep");
  NonceScope nonces(100);
  for (uint64_t n = 100; n < 116; ++n) fs::create_symlink(victim, TempNameFor(out, n));
  EXPECT_THROW(AtomicWriter w(out, Existing::kReplace), IoError);
  EXPECT_EQ(Slurp(victim), "keep");
  EXPECT_FALSE(fs::exists(out));
}

TEST(AtomicWriter, RefuseHoldsAtConstructionAndAtCommit) {
  TempDir dir;
  const std::string out = dir.File("out.safetensors");
  Put(out, "old");
  EXPECT_THROW(AtomicWriter w(out, Existing::kRefuse), ConfigError);
  EXPECT_EQ(Slurp(out), "old");
  fs::remove(out);
  {
    AtomicWriter w(out, Existing::kRefuse);
    WriteAll(w, "mine");
    Put(out, "someone else's");  // appears while writing
    EXPECT_THROW(w.Commit(), ConfigError);
  }
  EXPECT_EQ(Slurp(out), "someone else's");
  EXPECT_EQ(CountTemporaries(dir.path().string()), 0);
}

TEST(AtomicWriter, ReplaceSwapsTheWholeFileAndUncommittedWritersLeaveNothing) {
  TempDir dir;
  const std::string out = dir.File("out.bin");
  Put(out, "old");
  {
    AtomicWriter w(out, Existing::kReplace);
    WriteAll(w, "half");
    EXPECT_EQ(Slurp(out), "old");  // untouched until Commit
  }                                // destroyed without Commit
  EXPECT_EQ(Slurp(out), "old");
  EXPECT_EQ(CountTemporaries(dir.path().string()), 0);
  AtomicWriter w(out, Existing::kReplace);
  WriteAll(w, "new");
  w.Commit();
  EXPECT_EQ(Slurp(out), "new");
  EXPECT_THROW(AtomicWriter d(dir.path().string(), Existing::kReplace), ConfigError);  // a directory is not a file name
}

TEST(AtomicDir, SymlinkedTemporaryNamesAreSkippedAndExchangeReplacesTheOldDirectory) {
  TempDir dir;
  const std::string out = dir.File("model"), victim = dir.File("victim");
  fs::create_directories(victim);
  Put(victim + "/precious.txt", "keep");
  MakeModelDir(out, "old");
  NonceScope nonces(7);
  fs::create_symlink(victim, TempNameFor(out, 7));
  {
    AtomicDir d(out, /*overwrite=*/true, {});
    EXPECT_EQ(d.temp_path(), TempNameFor(out, 8));
    const std::string cfg = "{\"tag\": \"new\"}";
    d.WriteFile("config.json", {reinterpret_cast<const uint8_t*>(cfg.data()), cfg.size()});
    d.WriteFile("model.safetensors", {reinterpret_cast<const uint8_t*>("new"), 3});
    EXPECT_EQ(Slurp(out + "/model.safetensors"), "old");
    d.Commit();
  }
  EXPECT_EQ(Slurp(out + "/model.safetensors"), "new");
  EXPECT_EQ(Slurp(victim + "/precious.txt"), "keep");
  EXPECT_EQ(fs::directory_entry(victim).is_directory(), true);
  fs::remove(TempNameFor(out, 7));  // the planted link, left alone
  EXPECT_EQ(CountTemporaries(dir.path().string()), 0);
}

TEST(AtomicDir, ExistingNeedsOverwriteAnEmptyDirectoryDoesNot) {
  TempDir dir;
  const std::string out = dir.File("model");
  MakeModelDir(out, "old");
  EXPECT_THROW(AtomicDir d(out, false, {}), ConfigError);
  const std::string empty = dir.File("empty");
  fs::create_directories(empty);
  {
    AtomicDir d(empty, false, {});
    d.WriteFile("config.json", {reinterpret_cast<const uint8_t*>("{}"), 2});
    d.Commit();
  }
  EXPECT_TRUE(fs::exists(empty + "/config.json"));
  EXPECT_EQ(CountTemporaries(dir.path().string()), 0);
}

TEST(AtomicDir, OverwriteRefusesWhatItMustNotReplace) {
  TempDir dir;
  const std::string cwd = fs::current_path().string();
  const auto expect_refused = [&](const std::string& out, const std::vector<std::string>& inputs, const char* why) {
    try {
      CheckOverwriteTarget(out, inputs);
      ADD_FAILURE() << out << ": accepted, expected a refusal mentioning '" << why << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  MakeModelDir(dir.File("w"), "w");
  fs::create_directories(dir.File("w/sub"));
  fs::current_path(dir.File("w"));
  expect_refused(".", {}, "'.' or '..'");
  expect_refused(dir.File("w/sub/.."), {}, "'.' or '..'");
  expect_refused(dir.File("w"), {}, "current directory");
  expect_refused(dir.path().string(), {}, "current directory");  // a parent of the cwd
  fs::current_path(cwd);
  expect_refused("/", {}, "root");
  MakeModelDir(dir.File("holds_input"), "in");
  expect_refused(dir.File("holds_input"), {dir.File("holds_input/model.safetensors")}, "holds the input");
  expect_refused(dir.File("holds_input"), {dir.File("holds_input")}, "holds the input");
  MakeModelDir(dir.File("notes"), "x");
  Put(dir.File("notes/notes.txt"), "mine");
  expect_refused(dir.File("notes"), {}, "'notes.txt', which nibble does not write");
  fs::create_directories(dir.File("nomodel"));
  Put(dir.File("nomodel/config.json"), "{}");
  expect_refused(dir.File("nomodel"), {}, "does not look like a model directory");
  fs::create_directory_symlink(dir.File("w"), dir.File("link"));
  expect_refused(dir.File("link"), {}, "symbolic link");
  Put(dir.File("file"), "x");
  expect_refused(dir.File("file"), {}, "not a directory");
  const char* home = std::getenv("HOME");
  const std::string saved = home ? home : "";
  MakeModelDir(dir.File("home"), "h");
  setenv("HOME", dir.File("home").c_str(), 1);
  expect_refused(dir.File("home"), {}, "home directory");
  if (home) setenv("HOME", saved.c_str(), 1); else unsetenv("HOME");
  // A sharded checkpoint with tokenizer files is replaceable.
  fs::create_directories(dir.File("sharded"));
  for (const char* f : {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                        "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"})
    Put(dir.File(std::string("sharded/") + f), "x");
  EXPECT_NO_THROW(CheckOverwriteTarget(dir.File("sharded"), {}));
}

TEST(StaleTemporaries, DeadOwnersAreRemovedLiveOnesKept) {
  TempDir dir;
  const std::string out = dir.File("model");
  const long dead = DeadPid();
  const std::string stale = out + ".nibble-tmp-" + std::to_string(dead) + "-000000000abc";
  fs::create_directories(stale);
  Put(stale + "/model.safetensors", std::string(1000, 'x'));
  const std::string stale_file = out + ".nibble-tmp-" + std::to_string(dead) + "-00000000beef";
  Put(stale_file, "half");
  // Alive: the parent of this test process. Locked: a dead pid, but the flock is held.
  const std::string live = out + ".nibble-tmp-" + std::to_string(getppid()) + "-000000000001";
  fs::create_directories(live);
  const std::string locked = out + ".nibble-tmp-" + std::to_string(dead) + "-000000000002";
  Put(locked, "busy");
  const int fd = open(locked.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  const auto notes = RemoveStaleTemporaries(out);
  close(fd);
  EXPECT_EQ(notes.size(), 2u);
  for (const auto& n : notes) EXPECT_NE(n.find("no longer runs"), std::string::npos) << n;
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(stale_file));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(locked));
}

// A replacement without RENAME_EXCHANGE that was killed between moving the old output
// aside and renaming the new one in: the next run puts the old one back, and removes it
// only where OUT is there again.
TEST(StaleTemporaries, AnOldOutputMovedAsideComesBackWhereOutIsMissing) {
  TempDir dir;
  const std::string out = dir.File("model");
  const long dead = DeadPid();
  const std::string aside = out + ".nibble-old-" + std::to_string(dead) + "-000000000abc";
  MakeModelDir(aside, "old");
  auto notes = RemoveStaleTemporaries(out);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("restored " + out), std::string::npos) << notes[0];
  EXPECT_EQ(Slurp(out + "/model.safetensors"), "old");
  EXPECT_FALSE(fs::exists(aside));
  // With OUT present, a stale old output is only removed.
  MakeModelDir(aside, "older");
  notes = RemoveStaleTemporaries(out);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("no longer runs"), std::string::npos) << notes[0];
  EXPECT_EQ(Slurp(out + "/model.safetensors"), "old");
  EXPECT_FALSE(fs::exists(aside));
}

// A stale directory (or an old output left after a replacement) is emptied of model
// files only: something else in it keeps it, and the note says so.
TEST(StaleTemporaries, ADirectoryHoldingOtherFilesIsLeftInPlace) {
  TempDir dir;
  const std::string out = dir.File("model");
  const std::string stale = out + ".nibble-tmp-" + std::to_string(DeadPid()) + "-000000000abc";
  MakeModelDir(stale, "x");
  Put(stale + "/model.safetensors.nibble-tmp-1-ff", "half");  // a file writer's own temporary
  Put(stale + "/notes.txt", "keep");
  const auto notes = RemoveStaleTemporaries(out);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("left " + stale + " in place"), std::string::npos) << notes[0];
  EXPECT_EQ(Slurp(stale + "/notes.txt"), "keep");
  EXPECT_FALSE(fs::exists(stale + "/config.json"));
  EXPECT_FALSE(fs::exists(stale + "/model.safetensors.nibble-tmp-1-ff"));
}

TEST(CheckNotAnInput, OutputsThatAreOrReplaceInputsAreRefused) {
  TempDir dir;
  MakeModelDir(dir.File("m"), "m");
  Put(dir.File("text.txt"), "t");
  auto refused = [&](const std::string& out, const std::vector<std::string>& inputs) {
    try {
      CheckNotAnInput(out, inputs);
      return false;
    } catch (const ConfigError&) {
      return true;
    }
  };
  EXPECT_TRUE(refused(dir.File("text.txt"), {dir.File("text.txt")}));
  EXPECT_TRUE(refused(dir.File("m/model.safetensors"), {dir.File("m")}));
  EXPECT_TRUE(refused(dir.File("m/config.json"), {dir.File("m/model.safetensors.index.json")}));
  EXPECT_FALSE(refused(dir.File("m/new.safetensors"), {dir.File("m")}));  // a new file beside them
  EXPECT_FALSE(refused(dir.File("out.kld"), {dir.File("m"), dir.File("text.txt"), "", dir.File("missing")}));
}

TEST(StaleTemporaries, OwnerIsReadOnlyFromNibbleNames) {
  EXPECT_EQ(TemporaryOwner("m", "m.nibble-tmp-123-00ab"), 123);
  EXPECT_EQ(TemporaryOwner("m", "m.nibble-old-9-f"), 9);
  for (const char* bad : {"m.nibble-tmp-", "m.nibble-tmp-12", "m.nibble-tmp--1", "m.nibble-tmp-0-1", "m.nibble-tmp-012-1",
                          "m.nibble-tmp-1-xyz", "n.nibble-tmp-1-1", "m.tmp-1", "m.nibble-tmp-1234567890-1", "m"})
    EXPECT_FALSE(TemporaryOwner("m", bad).has_value()) << bad;
}

TEST(FreeSpace, ANeedPastTheFreeBytesIsAnErrorSayingBoth) {
  TempDir dir;
  try {
    CheckFreeSpace(dir.File("out"), uint64_t{1} << 62, "model.safetensors");
    FAIL() << "4 EiB fit";
  } catch (const IoError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("needs"), std::string::npos) << m;
    EXPECT_NE(m.find("free"), std::string::npos) << m;
    EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(CheckFreeSpace(dir.File("out"), 1, "x"));
}

}  // namespace
}  // namespace nibble::io
