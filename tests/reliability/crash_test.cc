// The reliability suite (issue 12): the real nibble binary, run the way a careless or
// hostile user (or a crash) would run it, in a temporary directory, with bounded loops and
// timeouts. Each test is named after the defect it proves fixed; all but one (the
// concurrent-exports guard) failed at e9ed95b.
//
// Here: kill -9 and signals at every stage of every writer, through the fault injection of
// io/atomic_writer.h (NIBBLE_CRASH_COUNT counts a run's crash points, NIBBLE_CRASH_AT=k
// kills it at the k-th with SIGKILL or NIBBLE_CRASH_SIGNAL), and durability (fsyncs,
// a full file system).
#include "reliability/reliability_util.h"

namespace nibble::test {
namespace {

// ---- kill -9 at many points; 6. what a crash leaves and the next run's cleanup ----------

struct CrashCase {
  const char* name;
  std::vector<std::string> (*args)(const std::string& out, bool overwrite);
  bool dir;
  // Makes the old output OUT holds before the run (none: OUT absent).
  std::vector<std::string> (*old_args)(const std::string& out);
};

std::vector<std::string> ConvertGguf(const std::string& out, bool ow) {
  std::vector<std::string> a = {"convert", "--dtype", "f16", Gguf(), out};
  if (ow) a.insert(a.begin() + 1, "--overwrite");
  return a;
}
std::vector<std::string> ConvertSt(const std::string& out, bool ow) {
  std::vector<std::string> a = {"convert", "--dtype", "bf16", Gguf(), out};
  if (ow) a.insert(a.begin() + 1, "--overwrite");
  return a;
}
std::vector<std::string> OldSt(const std::string& out) { return {"convert", "--dtype", "f32", Gguf(), out}; }
std::vector<std::string> QuantizeNf4(const std::string& out, bool ow) {
  std::vector<std::string> a = {"quantize", "--method", "nf4", "--double-quant", Gguf(), out};
  if (ow) a.insert(a.begin() + 1, "--overwrite");
  return a;
}
std::vector<std::string> Export(const std::string& out, bool ow) {
  std::vector<std::string> a = {"export", "--dtype", "bf16", "-m", Bin(), out};
  if (ow) a.insert(a.begin() + 1, "--overwrite");
  return a;
}
std::vector<std::string> OldExport(const std::string& out) { return {"export", "--dtype", "f32", "-m", Bin(), out}; }

const CrashCase kCrashCases[] = {
    {"convert-gguf", ConvertGguf, false, nullptr},
    {"convert-safetensors-overwrite", ConvertSt, false, OldSt},
    {"quantize-nf4", QuantizeNf4, true, nullptr},
    {"export", Export, true, nullptr},
    {"export-overwrite", Export, true, OldExport},
};

// Up to ~20 crash points: the first few (creating the temporary), an even spread over
// the writes, and the last ten (the commit steps, where replacement happens).
std::vector<long> SamplePoints(long n) {
  std::set<long> s;
  for (long k = 1; k <= std::min(n, 4L); ++k) s.insert(k);
  for (long k = std::max(1L, n - 9); k <= n; ++k) s.insert(k);
  for (int i = 1; i <= 6; ++i) s.insert(std::max(1L, n * i / 7));
  return {s.begin(), s.end()};
}

class Crash : public ::testing::TestWithParam<CrashCase> {};

// `fallback`: NIBBLE_TEST_RENAME_FALLBACK=1, a file system without renameat2's flags:
// files are linked then unlinked, and a directory is replaced by moving the old one aside
// (".nibble-old-") and the new one in; a crash between the two leaves OUT missing and the
// old one aside, which the next run puts back.
void Kill9Loop(const CrashCase& c, bool fallback) {
  TempDir t;
  const std::string ext = c.dir ? "" : std::string(".") + (c.args == ConvertGguf ? "gguf" : "safetensors");
  const std::string ref = t.File("ref" + ext);
  const std::string out = t.File("work/out" + ext);
  const std::vector<std::string> env_fallback =
      fallback ? std::vector<std::string>{"NIBBLE_TEST_RENAME_FALLBACK=1"} : std::vector<std::string>{};
  std::string old_ref;
  Snapshot old_snap;
  if (c.old_args != nullptr) {
    old_ref = t.File("old" + ext);
    ASSERT_EQ(Nibble(c.old_args(old_ref)).exit_code, 0);
    old_snap = Snap(old_ref);
    fs::copy(old_ref, ref);  // counted as it will run: replacing the old output
  }
  const std::string count_file = t.File("count");
  ProcOptions counting;
  counting.env = env_fallback;
  counting.env.push_back("NIBBLE_CRASH_COUNT=" + count_file);
  ProcResult r = Nibble(c.args(ref, c.old_args != nullptr), counting);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Snapshot new_snap = Snap(ref);
  const long points = std::atol(ReadBytes(count_file).c_str());
  ASSERT_GT(points, 5) << "crash points not counted";
  const fs::path work = fs::path(out).parent_path();

  int saw_old = 0, saw_new = 0, saw_absent = 0, saw_aside = 0, left_temporaries = 0;
  for (const long k : SamplePoints(points)) {
    SCOPED_TRACE(std::string(c.name) + (fallback ? " (rename fallback)" : "") + " killed at crash point " +
                 std::to_string(k) + " of " + std::to_string(points));
    fs::remove_all(work);
    fs::create_directories(work);
    if (c.old_args != nullptr) fs::copy(old_ref, out);
    ProcOptions crash;
    crash.env = env_fallback;
    crash.env.push_back("NIBBLE_CRASH_AT=" + std::to_string(k));
    r = Nibble(c.args(out, c.old_args != nullptr), crash);
    ASSERT_EQ(r.signal, SIGKILL) << "exit " << r.exit_code << "\n" << r.err;
    const Snapshot s = Snap(out);
    bool old_aside = false;
    for (const auto& e : fs::directory_iterator(work)) {
      const std::string name = e.path().filename().string();
      EXPECT_TRUE(e.path() == out || Has(name, ".nibble-tmp-") || Has(name, ".nibble-old-")) << name;
      old_aside |= Has(name, ".nibble-old-") && Snap(e.path().string()) == old_snap;
    }
    if (s.empty()) {
      ++saw_absent;
      // Only the fallback has an instant without OUT, and the complete old one is aside.
      if (c.old_args != nullptr) {
        EXPECT_TRUE(fallback && old_aside) << "the old output is gone";
        saw_aside += old_aside;
      }
    } else if (c.old_args != nullptr && s == old_snap) {
      ++saw_old;
    } else if (s == new_snap) {
      ++saw_new;
    } else {
      ADD_FAILURE() << "OUT is neither old nor new: " << Describe(s);
    }
    if (!s.empty()) {
      EXPECT_EQ(Nibble({"inspect", "--no-tensors", out}).exit_code, 0);
    }
    const int temps = CountTemporaries(work);
    left_temporaries += temps > 0;
    // The next run: removes them with a message (or puts the old one back), then
    // writes the new output.
    ProcOptions next;
    next.env = env_fallback;
    r = Nibble(c.args(out, true), next);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (temps > 0) {
      EXPECT_TRUE(Has(r.err, "no longer runs") || Has(r.err, "restored " + out)) << r.err;
    }
    EXPECT_EQ(CountTemporaries(work), 0);
    EXPECT_EQ(Snap(out), new_snap);
  }
  // The sample covers the states that are possible.
  EXPECT_GT(saw_new, 0);
  EXPECT_GT(c.old_args ? saw_old : saw_absent, 0);
  if (fallback && c.dir && c.old_args) {
    EXPECT_GT(saw_aside, 0);
  }
  EXPECT_GT(left_temporaries, 0);
}

// After each kill: OUT is absent, the complete old output or the complete new one (and
// then `nibble inspect` loads it), and nothing else appears beside it but temporaries.
// The next run removes the temporaries, says so, and writes the new output.
TEST_P(Crash, Kill9AtEveryStageLeavesOldOrNewOrNothing) { Kill9Loop(GetParam(), /*fallback=*/false); }
TEST_P(Crash, Kill9WithoutRenameExchangeLeavesOldOrNewOrOldAside) { Kill9Loop(GetParam(), /*fallback=*/true); }

// Ctrl-C and SIGTERM: the handler removes the temporaries before the process dies of
// the signal; OUT is again old, new or absent.
TEST_P(Crash, SigintAndSigtermLeaveNoTemporaries) {
  const CrashCase& c = GetParam();
  TempDir t;
  const std::string ext = c.dir ? "" : std::string(".") + (c.args == ConvertGguf ? "gguf" : "safetensors");
  const std::string out = t.File("work/out" + ext);
  const std::string count_file = t.File("count");
  ProcOptions counting;
  counting.env = {"NIBBLE_CRASH_COUNT=" + count_file};
  ASSERT_EQ(Nibble(c.args(t.File("ref" + ext), false), counting).exit_code, 0);
  const Snapshot new_snap = Snap(t.File("ref" + ext));
  const long points = std::atol(ReadBytes(count_file).c_str());
  Snapshot old_snap;
  if (c.old_args) {
    ASSERT_EQ(Nibble(c.old_args(t.File("old" + ext))).exit_code, 0);
    old_snap = Snap(t.File("old" + ext));
  }
  for (const char* sig : {"INT", "TERM", "HUP"}) {
    for (const long k : {2L, points / 2, points - 3, points - 1}) {
      SCOPED_TRACE(std::string("SIG") + sig + " at point " + std::to_string(k) + " of " + std::to_string(points));
      fs::remove_all(t.File("work"));
      fs::create_directories(t.File("work"));
      if (c.old_args) fs::copy(t.File("old" + ext), out);
      ProcOptions o;
      o.env = {"NIBBLE_CRASH_AT=" + std::to_string(k), std::string("NIBBLE_CRASH_SIGNAL=") + sig};
      const ProcResult r = Nibble(c.args(out, c.old_args != nullptr), o);
      EXPECT_EQ(r.signal, std::string(sig) == "INT" ? SIGINT : std::string(sig) == "TERM" ? SIGTERM : SIGHUP)
          << r.exit_code << r.err;
      EXPECT_EQ(CountTemporaries(t.File("work")), 0);
      const Snapshot s = Snap(out);
      EXPECT_TRUE(s == new_snap || (c.old_args ? s == old_snap : s.empty())) << Describe(s);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Writers, Crash, ::testing::ValuesIn(kCrashCases),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// kill -9 at random moments (not at crash points) while --overwrite replaces a directory:
// the test waits until a temporary directory beside OUT holds all four files (the run is
// about to replace OUT), then kills after a random 0-400 µs, so kills land in and around
// the replacement whatever the writer's naming or speed.
// ---- 10. durability: every file, the new directory and its parent are fsynced ----------

// strace(1) (a Debian package setup.sh installs) logs the fsyncs with the path of each fd.
TEST(Durability, EveryFileTheNewDirectoryAndItsParentAreFsyncedBeforeAndAfterTheRename) {
  TempDir t;
  ASSERT_EQ(test::Run({"/usr/bin/strace", "-V"}).exit_code, 0) << "strace is missing: run scripts/setup.sh";
  const std::string log = t.File("strace.log");
  // LeakSanitizer cannot run under ptrace (the sanitizer build): off for the traced run.
  ProcOptions o;
  o.env = {"ASAN_OPTIONS=detect_leaks=0"};
  const ProcResult r = test::Run({"/usr/bin/strace", "-f", "-y", "-e", "trace=fsync,fdatasync,renameat2", "-o", log, kCli,
                                  "export", "-m", Bin(), t.File("out")},
                                 o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  {
    std::ifstream f(log);
    for (std::string line; std::getline(f, line);) lines.push_back(line);
  }
  // The directory's own rename onto "out" (model.safetensors has one inside it first).
  long rename = -1;
  for (size_t i = 0; i < lines.size(); ++i)
    if (Has(lines[i], "renameat2(") && Has(lines[i], "\"" + t.File("out") + "\"")) rename = static_cast<long>(i);
  ASSERT_GE(rename, 0) << "no renameat2 onto out in the trace";
  for (const char* f : {"config.json>", "model.safetensors", "tokenizer.json>", "tokenizer_config.json>"}) {
    bool synced = false;
    for (long k = 0; k < rename; ++k) synced |= Has(lines[k], "fsync(") && Has(lines[k], f);
    EXPECT_TRUE(synced) << f << " not fsynced before the rename";
  }
  // The temporary directory itself after its last file and before the rename (so the
  // directory entries of every file are durable), the parent after the rename.
  long last_file = -1;
  bool tmp_dir = false, parent = false;
  for (long k = 0; k < rename; ++k) {
    // "fsync(3</dir/out.nibble-tmp-123-abc>) = 0": no '/' after the temporary's name.
    const size_t at = lines[k].find("out.nibble-tmp-");
    if (!Has(lines[k], "fsync(") || at == std::string::npos) continue;
    if (lines[k].find('/', at) != std::string::npos) {
      last_file = k;
      tmp_dir = false;
    } else {
      tmp_dir = last_file >= 0;
    }
  }
  for (size_t k = static_cast<size_t>(rename) + 1; k < lines.size(); ++k)
    parent |= Has(lines[k], "fsync(") && Has(lines[k], "<" + t.path().string() + ">");
  EXPECT_TRUE(tmp_dir) << "the new directory was not fsynced after its last file and before the rename";
  EXPECT_TRUE(parent) << "the parent directory was not fsynced after the rename";
}

// A file system too small for the output: the free-space check names both sizes before
// the work, instead of a write failing (ENOSPC) after it. A 256 KiB tmpfs mounted in a
// private mount namespace (unshare -rm: no privileges needed where user namespaces are
// allowed, as on the machines CI runs on).
TEST(Durability, AFullFileSystemIsFoundBeforeTheWork) {
  TempDir t;
  const std::string small = t.File("small");
  fs::create_directories(small);
  ASSERT_EQ(Nibble({"quantize", "--method", "int8", Gguf(), t.File("q8")}).exit_code, 0);
  for (const std::vector<std::string>& a : std::vector<std::vector<std::string>>{
           {"export", "-m", Bin(), small + "/out"},
           {"quantize", Gguf(), small + "/q"},
           {"dequantize", t.File("q8"), small + "/d"},
           {"convert", "--dtype", "f32", Gguf(), small + "/x.gguf"}}) {
    std::string cmd = "mount -t tmpfs -o size=256k none " + small + " || exit 99; exec " + kCli;
    for (const std::string& s : a) cmd += " " + s;
    const ProcResult r = test::Run({"/usr/bin/unshare", "-rm", "/bin/sh", "-c", cmd});
    ASSERT_NE(r.exit_code, 99) << "could not mount a small tmpfs in a mount namespace: " << r.err;
    ExpectOneError(r, "but the file system has 256.0 KiB free", a[0] + " to a 256 KiB file system");
    EXPECT_TRUE(Has(r.err, "needs ")) << r.err;
  }
  EXPECT_TRUE(fs::is_empty(small));  // the mount was private; nothing was written here
}

}  // namespace
}  // namespace nibble::test
