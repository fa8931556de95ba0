// The reliability suite: the real nibble binary, run the way a careless or hostile user
// (or a crash) would run it, in a temporary directory, with bounded loops and timeouts.
// Each test is named after the defect of issue 12 it proves fixed; every one of them
// failed at e9ed95b, where writers used a fixed "OUT.tmp", --overwrite deleted before it
// renamed, and arguments and inputs were not bounded.
//
// The crash tests use the fault injection of io/atomic_writer.h: NIBBLE_CRASH_COUNT
// counts the crash points a run passes (one per write, per file and per commit step),
// NIBBLE_CRASH_AT=k kills the run at the k-th with SIGKILL (or NIBBLE_CRASH_SIGNAL).
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
namespace {

namespace fs = std::filesystem;

// NIBBLE_TEST_CLI runs the suite against another build (an older commit, to see which
// tests catch its defects).
const std::string kCli = std::getenv("NIBBLE_TEST_CLI") ? std::getenv("NIBBLE_TEST_CLI") : NIBBLE_CLI_PATH;
std::string Gguf() { return SourcePath("assets/stories260K/stories260K.gguf"); }
std::string Bin() { return SourcePath("assets/stories260K/stories260K.bin"); }
std::string Tok() { return SourcePath("assets/stories260K/tok512.bin"); }
std::string Text() { return SourcePath("assets/tinystories-excerpt/tinystories_val_excerpt.txt"); }

std::vector<std::string> Cmd(std::vector<std::string> args) {
  args.insert(args.begin(), kCli);
  return args;
}

ProcResult Nibble(std::vector<std::string> args, ProcOptions o = {}) {
  if (o.timeout_s == 60) o.timeout_s = 120;
  return Run(Cmd(std::move(args)), o);
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
bool Has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string ReadBytes(const std::string& p) { return Proc::Slurp(p); }
void Put(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// A file's bytes, or a directory's files by name; {} for nothing there.
using Snapshot = std::map<std::string, std::string>;
Snapshot Snap(const std::string& p) {
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
std::string Describe(const Snapshot& s) {
  if (s.empty()) return "absent";
  std::string d;
  for (const auto& [k, v] : s) d += (k.empty() ? "file" : k) + "(" + std::to_string(v.size()) + " B) ";
  return d;
}

// One error line, naming `what`.
void ExpectOneError(const ProcResult& r, const std::string& what, const std::string& context) {
  EXPECT_EQ(r.exit_code, 1) << context << "\n" << r.err;
  EXPECT_EQ(r.signal, 0) << context;
  EXPECT_FALSE(r.timed_out) << context;
  EXPECT_TRUE(Has(r.err, what)) << context << ": expected '" << what << "' in:\n" << r.err;
  EXPECT_TRUE(Has(r.err, "nibble: error: ")) << context << "\n" << r.err;
}

// ---- 1. --overwrite never deletes what nibble did not write ---------------------------

TEST(Overwrite, DotAndDotDotAndNonModelDirectoriesAreRefusedUntouched) {
  TempDir t;
  const std::string w = t.File("w");
  fs::create_directories(w);
  Put(w + "/notes.txt", "keep");
  ProcOptions in_w;
  in_w.cwd = w;
  ProcResult r = Nibble({"export", "--overwrite", "-m", Bin(), "."}, in_w);
  ExpectOneError(r, "'.' or '..'", "export --overwrite .");
  EXPECT_EQ(ReadBytes(w + "/notes.txt"), "keep");
  for (const char* cmd : {"quantize", "dequantize"}) {
    r = Nibble({cmd, "--overwrite", Gguf(), "."}, in_w);
    EXPECT_EQ(r.exit_code, 1) << cmd << r.err;
    EXPECT_EQ(ReadBytes(w + "/notes.txt"), "keep") << cmd;
  }
  // a/b/.. is a: it holds the input model.
  fs::create_directories(t.File("a/b"));
  fs::copy_file(Bin(), t.File("a/model.bin"));
  fs::copy_file(Tok(), t.File("a/tok512.bin"));
  r = Nibble({"export", "--overwrite", "-m", t.File("a/model.bin"), t.File("a/b/..")});
  ExpectOneError(r, "'.' or '..'", "export --overwrite a/b/..");
  EXPECT_EQ(ReadBytes(t.File("a/model.bin")), ReadBytes(Bin()));
  // The current directory by its own name, and a parent of it.
  fs::create_directories(w + "/sub");
  ProcOptions in_sub;
  in_sub.cwd = w + "/sub";
  r = Nibble({"export", "--overwrite", "-m", Bin(), w + "/sub"}, in_sub);
  ExpectOneError(r, "current directory", "export --overwrite $PWD");
  r = Nibble({"export", "--overwrite", "-m", Bin(), w}, in_sub);
  ExpectOneError(r, "current directory", "export --overwrite parent of $PWD");
  EXPECT_EQ(ReadBytes(w + "/notes.txt"), "keep");
  // A directory that is not a model directory, even when it has config.json.
  Put(w + "/config.json", "{}");
  Put(w + "/model.safetensors", "x");
  r = Nibble({"export", "--overwrite", "-m", Bin(), w});
  ExpectOneError(r, "which nibble does not write", "export --overwrite dir-with-notes");
  EXPECT_EQ(ReadBytes(w + "/notes.txt"), "keep");
  // A directory with no model files at all.
  fs::create_directories(t.File("photos"));
  Put(t.File("photos/cat.jpg"), "meow");
  r = Nibble({"quantize", "--overwrite", Gguf(), t.File("photos")});
  ExpectOneError(r, "cat.jpg", "quantize --overwrite photos");
  EXPECT_EQ(ReadBytes(t.File("photos/cat.jpg")), "meow");
}

TEST(Overwrite, HomeTheInputsDirectoryAndSymlinksAreRefused) {
  TempDir t;
  // $HOME that looks like a model directory.
  const std::string home = t.File("home");
  fs::create_directories(home);
  Put(home + "/config.json", "{}");
  Put(home + "/model.safetensors", "x");
  ProcOptions o;
  o.env = {"HOME=" + home};
  ProcResult r = Nibble({"export", "--overwrite", "-m", Bin(), home}, o);
  ExpectOneError(r, "home directory", "export --overwrite $HOME");
  EXPECT_EQ(ReadBytes(home + "/model.safetensors"), "x");
  // OUT holds the input (an exported HF directory quantized onto itself).
  const std::string hf = t.File("hf");
  ASSERT_EQ(Nibble({"export", "-m", Bin(), hf}).exit_code, 0);
  const Snapshot before = Snap(hf);
  r = Nibble({"quantize", "--overwrite", hf, hf});
  ExpectOneError(r, "holds the input", "quantize --overwrite IN IN");
  EXPECT_EQ(Snap(hf), before);
  // A symlink to a model directory: the link is not followed into a replacement.
  fs::create_symlink(hf, t.File("link"));
  r = Nibble({"export", "--overwrite", "-m", Gguf(), t.File("link")});
  ExpectOneError(r, "symbolic link", "export --overwrite symlink");
  EXPECT_EQ(Snap(hf), before);
  EXPECT_TRUE(fs::is_symlink(t.File("link")));
}

TEST(Overwrite, AModelDirectoryIsReplacedAndWithoutTheFlagRefused) {
  TempDir t;
  const std::string out = t.File("out");
  ASSERT_EQ(Nibble({"export", "-m", Bin(), out}).exit_code, 0);
  const Snapshot f32 = Snap(out);
  ProcResult r = Nibble({"export", "--dtype", "bf16", "-m", Bin(), out});
  ExpectOneError(r, "pass --overwrite", "export onto OUT");
  EXPECT_EQ(Snap(out), f32);
  r = Nibble({"export", "--overwrite", "--dtype", "bf16", "-m", Bin(), out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(Snap(out), f32);
  EXPECT_LT(Snap(out).at("model.safetensors").size(), f32.at("model.safetensors").size());
  EXPECT_EQ(CountTemporaries(t.path()), 0);
  // An empty directory (mkdir OUT first, as people do) is filled without the flag.
  fs::create_directories(t.File("empty"));
  ASSERT_EQ(Nibble({"quantize", Gguf(), t.File("empty")}).exit_code, 0);
  EXPECT_TRUE(fs::exists(t.File("empty/model.safetensors")));
}

// ---- 10. convert behaves like export and quantize -----------------------------------

TEST(Overwrite, ConvertNeedsTheFlagToReplaceAFile) {
  TempDir t;
  const std::string out = t.File("m.gguf");
  ASSERT_EQ(Nibble({"convert", "--dtype", "f16", Gguf(), out}).exit_code, 0);
  const std::string f16 = ReadBytes(out);
  ProcResult r = Nibble({"convert", "--dtype", "f32", Gguf(), out});
  ExpectOneError(r, "already exists (pass --overwrite", "convert onto OUT");
  EXPECT_EQ(ReadBytes(out), f16);
  ASSERT_EQ(Nibble({"convert", "--overwrite", "--dtype", "f32", Gguf(), out}).exit_code, 0);
  EXPECT_GT(ReadBytes(out).size(), f16.size());
}

// The other file writers: the KL-divergence reference keeps an existing file unless
// --overwrite, and never replaces an input; convert never replaces a model directory's file.
TEST(Overwrite, NoWriterReplacesAnInput) {
  TempDir t;
  fs::copy_file(Gguf(), t.File("m.gguf"));
  fs::copy_file(Text(), t.File("text.txt"));
  const std::string model = ReadBytes(t.File("m.gguf")), text = ReadBytes(t.File("text.txt"));
  auto ppl = [&](const std::string& base, bool overwrite) {
    std::vector<std::string> a = {"perplexity", "-m", t.File("m.gguf"), "-f", t.File("text.txt"), "-c", "64",
                                  "--chunks", "2", "--kl-divergence-base", base};
    if (overwrite) a.push_back("--overwrite");
    return Nibble(a);
  };
  ExpectOneError(ppl(t.File("m.gguf"), true), "is the input", "--kl-divergence-base MODEL");
  ExpectOneError(ppl(t.File("text.txt"), true), "is the input", "--kl-divergence-base TEXT");
  EXPECT_EQ(ReadBytes(t.File("m.gguf")), model);
  EXPECT_EQ(ReadBytes(t.File("text.txt")), text);
  ASSERT_EQ(ppl(t.File("ref.kld"), false).exit_code, 0);
  const std::string kld = ReadBytes(t.File("ref.kld"));
  ExpectOneError(ppl(t.File("ref.kld"), false), "already exists (pass --overwrite", "--kl-divergence-base again");
  EXPECT_EQ(ReadBytes(t.File("ref.kld")), kld);
  EXPECT_EQ(ppl(t.File("ref.kld"), true).exit_code, 0);
  // convert --overwrite IN_DIR IN_DIR/model.safetensors.
  ASSERT_EQ(Nibble({"export", "-m", Bin(), t.File("hf")}).exit_code, 0);
  const Snapshot hf = Snap(t.File("hf"));
  ExpectOneError(Nibble({"convert", "--overwrite", "--dtype", "bf16", t.File("hf"), t.File("hf/model.safetensors")}),
                 "is a file of the input model directory", "convert DIR DIR/model.safetensors");
  EXPECT_EQ(Snap(t.File("hf")), hf);
  ExpectOneError(Nibble({"convert", "--overwrite", "--dtype", "bf16", t.File("hf/model.safetensors"),
                         t.File("hf/model.safetensors")}),
                 "is the input", "convert FILE FILE");
  EXPECT_EQ(Snap(t.File("hf")), hf);
}

// ---- 2. unique temporaries: symlinks at the old names, concurrent writers ------------

TEST(Temporaries, SymlinksAtTheOldFixedNamesAreNotFollowed) {
  TempDir t;
  const std::string victim = t.File("victim.txt");
  Put(victim, "precious");
  for (const char* out : {"out.gguf", "out.safetensors"}) {
    for (const char* suffix : {".tmp", ".tmp-1", ".nibble-tmp"})
      fs::create_symlink(victim, t.File(std::string(out) + suffix));
    const ProcResult r = Nibble({"convert", "--dtype", "bf16", Gguf(), t.File(out)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ReadBytes(victim), "precious") << out;
    EXPECT_EQ(Nibble({"inspect", t.File(out)}).exit_code, 0) << out;
  }
  // The KL-divergence reference, the other file writer.
  fs::create_symlink(victim, t.File("ref.kld.tmp"));
  const ProcResult r = Nibble({"perplexity", "-m", Gguf(), "-f", Text(), "-c", "64", "--chunks", "2",
                               "--kl-divergence-base", t.File("ref.kld")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadBytes(victim), "precious");
  EXPECT_TRUE(fs::is_regular_file(t.File("ref.kld")));
}

// References for the concurrent and crash tests: each command run once, alone.
struct Reference {
  std::string dtype;
  Snapshot snap;
};

std::vector<Reference> ConvertReferences(const TempDir& t, const std::string& ext) {
  std::vector<Reference> refs;
  for (const char* dt : {"f32", "f16", "bf16"}) {
    const std::string p = t.File(std::string("ref-") + dt + ext);
    const ProcResult r = Nibble({"convert", "--dtype", dt, Gguf(), p});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    refs.push_back({dt, Snap(p)});
  }
  return refs;
}

TEST(Temporaries, ConcurrentConvertsToOneOutEachExitZeroOnlyWithTheirOwnBytes) {
  TempDir t;
  const std::vector<Reference> refs = ConvertReferences(t, ".gguf");
  const std::string out = t.File("out.gguf");
  for (int round = 0; round < 3; ++round) {
    // Without --overwrite exactly one wins; the file is that one's complete output.
    fs::remove(out);
    std::vector<std::unique_ptr<Proc>> procs;
    for (int i = 0; i < 4; ++i)
      procs.push_back(std::make_unique<Proc>(Cmd({"convert", "--dtype", refs[i % 3].dtype, Gguf(), out}), ProcOptions{}));
    int winners = 0;
    std::string winner_dtype;
    for (int i = 0; i < 4; ++i) {
      const ProcResult r = procs[i]->Wait();
      if (r.exit_code == 0) {
        ++winners;
        winner_dtype = refs[i % 3].dtype;
      } else {
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_TRUE(Has(r.err, "already exists") || Has(r.err, "appeared while writing")) << r.err;
      }
    }
    ASSERT_EQ(winners, 1) << "round " << round;
    for (const Reference& ref : refs)
      if (ref.dtype == winner_dtype) {
        EXPECT_EQ(Snap(out), ref.snap) << "round " << round << " winner " << winner_dtype;
      }
    EXPECT_EQ(CountTemporaries(t.path()), 0);
    // With --overwrite every run replaces OUT with its own complete output: the last
    // rename wins, and the file is exactly one of the references.
    procs.clear();
    for (int i = 0; i < 4; ++i)
      procs.push_back(std::make_unique<Proc>(
          Cmd({"convert", "--overwrite", "--dtype", refs[i % 3].dtype, Gguf(), out}), ProcOptions{}));
    for (auto& p : procs) {
      const ProcResult r = p->Wait();
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    const Snapshot s = Snap(out);
    int matches = 0;
    for (const Reference& ref : refs) matches += s == ref.snap;
    EXPECT_EQ(matches, 1) << "round " << round << ": " << Describe(s);
    EXPECT_EQ(CountTemporaries(t.path()), 0);
  }
}

TEST(Temporaries, ConcurrentExportsOverwritingOneDirectoryLeaveOneWholeOutput) {
  TempDir t;
  std::vector<Reference> refs;
  for (const char* dt : {"f32", "f16", "bf16"}) {
    const std::string p = t.File(std::string("ref-") + dt);
    ASSERT_EQ(Nibble({"export", "--dtype", dt, "-m", Bin(), p}).exit_code, 0);
    refs.push_back({dt, Snap(p)});
  }
  const std::string out = t.File("out");
  ASSERT_EQ(Nibble({"export", "-m", Bin(), out}).exit_code, 0);
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<Proc>> procs;
    for (int i = 0; i < 3; ++i)
      procs.push_back(std::make_unique<Proc>(Cmd({"export", "--overwrite", "--dtype", refs[i].dtype, "-m", Bin(), out}),
                                             ProcOptions{}));
    int ok = 0;
    for (auto& p : procs) {
      const ProcResult r = p->Wait();
      ok += r.exit_code == 0;
      if (r.exit_code != 0) {
        EXPECT_EQ(Lines(r.err), 1) << r.err;
      }
    }
    EXPECT_GE(ok, 1);
    const Snapshot s = Snap(out);
    int matches = 0;
    for (const Reference& ref : refs) matches += s == ref.snap;
    EXPECT_EQ(matches, 1) << "round " << round << ": " << Describe(s);
    EXPECT_EQ(CountTemporaries(t.path()), 0);
  }
}

// ---- 3. --overwrite replaces atomically: a watcher never sees OUT incomplete -----------

TEST(AtomicReplace, AWatcherAlwaysSeesACompleteOutput) {
  TempDir t;
  const std::string out = t.File("out");
  ASSERT_EQ(Nibble({"export", "-m", Bin(), out}).exit_code, 0);
  std::atomic<bool> stop{false};
  std::atomic<long> polls{0}, misses{0};
  std::thread watcher([&] {
    struct stat st {};
    while (!stop.load()) {
      const bool whole = ::stat((out + "/config.json").c_str(), &st) == 0 &&
                         ::stat((out + "/model.safetensors").c_str(), &st) == 0 && st.st_size > 0 &&
                         ::stat((out + "/tokenizer.json").c_str(), &st) == 0;
      misses += !whole;
      ++polls;
    }
  });
  for (int i = 0; i < 6; ++i) {
    const ProcResult r = Nibble({"export", "--overwrite", "--dtype", i % 2 ? "f32" : "bf16", "-m", Bin(), out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  stop = true;
  watcher.join();
  EXPECT_GT(polls.load(), 100);
  EXPECT_EQ(misses.load(), 0) << "of " << polls.load() << " polls";
}

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
TEST(AtomicReplace, RandomKill9DuringOverwrite) {
  TempDir t;
  const std::string out = t.File("work/out");
  ASSERT_EQ(Nibble({"export", "--dtype", "f32", "-m", Bin(), t.File("old")}).exit_code, 0);
  ASSERT_EQ(Nibble({"export", "--dtype", "bf16", "-m", Bin(), t.File("new")}).exit_code, 0);
  const Snapshot old_snap = Snap(t.File("old")), new_snap = Snap(t.File("new"));
  auto temporary_is_full = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(t.File("work"), ec)) {
      if (e.path() == out || !e.is_directory(ec)) continue;
      int files = 0;
      for (const auto& f : fs::directory_iterator(e.path(), ec)) files += f.path().extension() == ".json" ||
                                                                           f.path().filename() == "model.safetensors";
      if (files >= 4) return true;
    }
    return false;
  };
  std::mt19937 rng(12);
  int old_seen = 0, new_seen = 0;
  for (int i = 0; i < 20; ++i) {
    fs::remove_all(t.File("work"));
    fs::create_directories(t.File("work"));
    fs::copy(t.File("old"), out);
    Proc p(Cmd({"export", "--overwrite", "--dtype", "bf16", "-m", Bin(), out}), ProcOptions{});
    while (p.Running() && !temporary_is_full()) {
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 400)(rng)));
    p.Signal(SIGKILL);
    p.Wait();
    const Snapshot s = Snap(out);
    old_seen += s == old_snap;
    new_seen += s == new_snap;
    EXPECT_TRUE(s == old_snap || s == new_snap) << "kill " << i << ": " << Describe(s);
  }
  EXPECT_EQ(old_seen + new_seen, 20);
}

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

// ---- 4. --threads ----------------------------------------------------------------------

TEST(Arguments, ThreadsOutsideZeroToFourTimesTheCoresAreRefused) {
  TempDir t;
  for (const char* n : {"100000", "33000", "-1", "abc"}) {
    for (const std::vector<std::string>& cmd :
         std::vector<std::vector<std::string>>{{"generate", "-m", Gguf(), "-p", "Once", "-n", "2"},
                                               {"perplexity", "-m", Gguf(), "-f", Text(), "-c", "64", "--chunks", "1"},
                                               {"convert", Gguf(), t.File("x.gguf")},
                                               {"quantize", Gguf(), t.File("q")}}) {
      std::vector<std::string> a = cmd;
      a.push_back("--threads");
      a.push_back(n);
      const ProcResult r = Nibble(a);
      ExpectOneError(r, "--threads", cmd[0] + " --threads " + n);
    }
  }
  EXPECT_FALSE(fs::exists(t.File("x.gguf")));
  const ProcResult r = Nibble({"generate", "-m", Gguf(), "-p", "Once", "-n", "2", "--threads", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---- 5. bounded inputs -----------------------------------------------------------------

TEST(Inputs, DevZeroFifosAndDirectoriesAreRefusedQuickly) {
  TempDir t;
  ProcOptions quick;
  quick.timeout_s = 30;
  for (const std::vector<std::string>& a : std::vector<std::vector<std::string>>{
           {"tokenize", "-m", Gguf(), "-f", "/dev/zero"},
           {"generate", "-m", Gguf(), "-f", "/dev/zero", "-n", "1"},
           {"perplexity", "-m", Gguf(), "-f", "/dev/zero"}}) {
    const ProcResult r = Nibble(a, quick);
    ExpectOneError(r, "/dev/zero", a[0] + " -f /dev/zero");
  }
  ASSERT_EQ(::mkfifo(t.File("fifo").c_str(), 0600), 0);
  ProcResult r = Nibble({"generate", "-m", t.File("fifo"), "-p", "x"}, quick);
  ExpectOneError(r, "FIFO", "generate -m fifo");
  r = Nibble({"tokenize", "-m", Gguf(), "-f", t.File("fifo")}, quick);
  ExpectOneError(r, "FIFO", "tokenize -f fifo");
  // A model directory whose model.safetensors is a FIFO.
  ASSERT_EQ(Nibble({"export", "-m", Bin(), t.File("hf")}).exit_code, 0);
  fs::remove(t.File("hf/model.safetensors"));
  ASSERT_EQ(::mkfifo(t.File("hf/model.safetensors").c_str(), 0600), 0);
  r = Nibble({"generate", "-m", t.File("hf"), "-p", "x"}, quick);
  ExpectOneError(r, "model.safetensors", "generate -m dir-with-fifo");
  // A directory where a file belongs names the path.
  r = Nibble({"generate", "-m", Gguf(), "-f", t.File("hf"), "-n", "1"}, quick);
  ExpectOneError(r, t.File("hf") + ": the prompt file (-f) is a directory", "generate -f dir");
  r = Nibble({"chat", "-m", Gguf(), "--template", t.File("hf"), "-p", "hi"}, quick);
  ExpectOneError(r, t.File("hf") + ": the chat template (--template) is a directory", "chat --template dir");
}

TEST(Inputs, FilesPastTheStatedLimitAreRefusedNamingIt) {
  TempDir t;
  // Sparse: no disk is used.
  const std::string big = t.File("big.txt");
  { std::ofstream(big).put('a'); }
  fs::resize_file(big, (uint64_t{64} << 20) + 1);
  const ProcResult r = Nibble({"generate", "-m", Gguf(), "-f", big, "-n", "1"});
  ExpectOneError(r, "64 MiB", "generate -f 64MiB+1");
  const std::string huge = t.File("huge.txt");
  { std::ofstream(huge).put('a'); }
  fs::resize_file(huge, (uint64_t{1} << 30) + 1);
  const ProcResult p = Nibble({"perplexity", "-m", Gguf(), "-f", huge});
  ExpectOneError(p, "1024 MiB", "perplexity -f 1GiB+1");
}

// ---- 7. write errors on stdout -----------------------------------------------------------

TEST(Stdout, AFullOrClosedStdoutIsAnError) {
  // A full disk, a closed stdout, and a reader that went away (`| head -1`).
  for (const char* dest : {"/dev/full", "-", "|"}) {
    for (const std::vector<std::string>& a :
         std::vector<std::vector<std::string>>{{"tokenize", "-m", Gguf(), "-p", "Once upon a time"},
                                               {"generate", "-m", Gguf(), "-p", "Once", "-n", "400"},
                                               {"perplexity", "-m", Gguf(), "-f", Text(), "-c", "64", "--chunks", "2"},
                                               {"inspect", Gguf()}}) {
      ProcOptions o;
      o.stdout_path = dest;
      const ProcResult r = Nibble(a, o);
      EXPECT_EQ(r.signal, 0) << a[0] << " > " << dest << " died of a signal";
      EXPECT_EQ(r.exit_code, 1) << a[0] << " > " << dest << "\n" << r.err;
      EXPECT_TRUE(Has(r.err, "stdout")) << a[0] << " > " << dest << "\n" << r.err;
      if (a[0] == "generate") {  // it stops at the first failed write instead of running on to -n
        EXPECT_TRUE(Has(r.err, "stop interrupted")) << dest << "\n" << r.err;
      }
    }
  }
}

// ---- 8. non-finite weights -----------------------------------------------------------------

TEST(NonFinite, NanAndInfWeightsAreRefusedNamingTensorAndElement) {
  TempDir t;
  // A llama2.c checkpoint: 28-byte header, then the token embedding table.
  std::string bytes = ReadBytes(Bin());
  const float nan = std::nanf("");
  std::memcpy(&bytes[28 + 4 * 10], &nan, 4);
  Put(t.File("nan.bin"), bytes);
  fs::copy_file(Tok(), t.File("tok512.bin"));
  const std::string m = t.File("nan.bin");
  const std::string what = "tensor 'model.embed_tokens.weight': element 10 is NaN or infinite";
  ExpectOneError(Nibble({"generate", "-m", m, "-p", "Once", "-n", "4"}), what, "generate");
  ExpectOneError(Nibble({"perplexity", "-m", m, "-f", Text(), "-c", "64", "--chunks", "1"}), what, "perplexity");
  ExpectOneError(Nibble({"convert", "--dtype", "f8_e4m3fn", m, t.File("x.safetensors")}), what, "convert");
  ExpectOneError(Nibble({"export", "-m", m, t.File("hf")}), what, "export");
  ExpectOneError(Nibble({"quantize", m, t.File("q")}), what, "quantize");
  EXPECT_FALSE(fs::exists(t.File("x.safetensors")));
  EXPECT_FALSE(fs::exists(t.File("hf")));
  // An infinity in a GGUF weight, far from the start.
  {
    const io::GgufFile g = io::GgufFile::Open(Gguf());
    std::vector<std::vector<uint8_t>> data;
    std::vector<io::GgufWriteTensor> ts;
    for (const io::GgufTensor& x : g.tensors()) data.emplace_back(x.data.begin(), x.data.end());
    int64_t where = -1;
    std::string name;
    for (size_t i = 0; i < g.tensors().size(); ++i) {
      const io::GgufTensor& x = g.tensors()[i];
      if (where < 0 && x.dtype == DType::kF32 && x.shape.rank() == 2 && Has(x.name, "ffn_down")) {
        where = x.shape.NumElems() - 3;
        name = x.name;
        const float inf = INFINITY;
        std::memcpy(data[i].data() + 4 * where, &inf, 4);
      }
      ts.push_back({x.name, x.dtype, x.shape, data[i], nullptr});
    }
    ASSERT_GE(where, 0);
    io::WriteGguf(t.File("inf.gguf"), g.metadata(), ts, nibble::io::Existing::kReplace);
    ExpectOneError(Nibble({"generate", "-m", t.File("inf.gguf"), "-p", "Once", "-n", "4"}),
                   "element " + std::to_string(where), "generate inf.gguf");
  }
  // --allow-nonfinite loads them anyway.
  ProcResult r = Nibble({"generate", "-m", m, "-p", "Once", "-n", "4", "--allow-nonfinite"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Nibble({"export", "--allow-nonfinite", "-m", m, t.File("hf")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---- 9. chat -----------------------------------------------------------------------------

std::string Chatml() { return Golden("chat/chatml.jinja"); }

TEST(Chat, AFullContextFromAPipeEndsTheChatWithOneErrorAndExitOne) {
  std::string input;
  for (int i = 0; i < 60; ++i) input += "Tell me a story about a cat and a dog number " + std::to_string(i) + "\n";
  TempDir t;
  Put(t.File("in.txt"), input);
  ProcOptions o;
  o.stdin_path = t.File("in.txt");
  const ProcResult r = Nibble({"chat", "-m", Gguf(), "--template", Chatml(), "-c", "128", "-n", "16", "--temp", "0"}, o);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  size_t errors = 0;
  for (size_t p = r.err.find("nibble: error:"); p != std::string::npos; p = r.err.find("nibble: error:", p + 1)) ++errors;
  EXPECT_EQ(errors, 1u) << r.err;
  EXPECT_TRUE(Has(r.err, "summary:")) << r.err;
}

// Ctrl-C during a reply stops the reply; the chat goes on. The reply may finish before
// the signal lands (then Ctrl-C at the prompt ends the chat): retried a few times.
TEST(Chat, CtrlCStopsTheReplyAndAtThePromptEndsTheChat) {
  bool stopped_a_reply = false;
  for (int attempt = 0; attempt < 5 && !stopped_a_reply; ++attempt) {
    ProcOptions o;
    o.stdin_pipe = true;
    Proc p(Cmd({"chat", "-m", Gguf(), "--template", Chatml(), "-n", "-1", "--temp", "1", "--seed",
                std::to_string(3 + attempt)}),
           o);
    p.Write("Once upon a time\n");
    const auto t0 = std::chrono::steady_clock::now();
    while (p.StdoutSoFar().empty() && p.Running() &&
           std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    p.Signal(SIGINT);
    // Wait for the turn to end (its stats line), then chat on.
    while (!Has(p.StderrSoFar(), "| stop ") && p.Running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!Has(p.StderrSoFar(), "stop interrupted")) continue;  // the reply ended first
    stopped_a_reply = true;
    p.Write("/exit\n");
    p.CloseStdin();
    const ProcResult r = p.Wait();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(Has(r.err, "summary: 1 turns")) << r.err;
  }
  EXPECT_TRUE(stopped_a_reply) << "every reply finished before Ctrl-C landed";
  // At the prompt: the chat ends with 130 and its summary.
  ProcOptions o;
  o.stdin_pipe = true;
  Proc p(Cmd({"chat", "-m", Gguf(), "--template", Chatml(), "-n", "4"}), o);
  p.Write("Hi\n");
  while (!Has(p.StderrSoFar(), "| stop ") && p.Running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // No wait for the read to start: a Ctrl-C that lands before it must not be lost.
  p.Signal(SIGINT);
  const ProcResult r = p.Wait();
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_TRUE(Has(r.err, "summary: 1 turns")) << r.err;
  // Twice: the chat ends with its summary, exit 130 (not killed), whether the second
  // lands during the reply or back at the prompt. (Two signals sent at once would merge
  // into one, so the second follows after 20 ms.)
  ProcOptions o2;
  o2.stdin_pipe = true;
  Proc q(Cmd({"chat", "-m", Gguf(), "--template", Chatml(), "-n", "-1", "--temp", "1"}), o2);
  q.Write("Once upon a time\n");
  while (q.StdoutSoFar().empty() && q.Running()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  q.Signal(SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  q.Signal(SIGINT);
  const ProcResult r2 = q.Wait();
  EXPECT_EQ(r2.signal, 0) << r2.err;
  EXPECT_EQ(r2.exit_code, 130) << r2.err;
  EXPECT_TRUE(Has(r2.err, "summary: 1 turns")) << r2.err;
}

// ---- 10. messages and validation ------------------------------------------------------------

TEST(Messages, EachNamesTheProblem) {
  TempDir t;
  ASSERT_EQ(Nibble({"export", "-m", Bin(), t.File("hf")}).exit_code, 0);
  Put(t.File("hf/config.json"), "{\n  \"hidden_size\": 64,\n  \"num_hidden_layers\": \n}\n");
  ExpectOneError(Nibble({"generate", "-m", t.File("hf"), "-p", "x"}), "line 4", "bad config.json");
  // A GGUF with embedding_length 0.
  {
    const io::GgufFile g = io::GgufFile::Open(Gguf());
    std::vector<io::GgufKv> kv = g.metadata();
    for (io::GgufKv& e : kv)
      if (e.key == "llama.embedding_length") e.value.value = uint64_t{0};
    std::vector<io::GgufWriteTensor> ts;
    for (const io::GgufTensor& x : g.tensors()) ts.push_back({x.name, x.dtype, x.shape, x.data, nullptr});
    io::WriteGguf(t.File("zero.gguf"), kv, ts, nibble::io::Existing::kReplace);
  }
  ExpectOneError(Nibble({"generate", "-m", t.File("zero.gguf"), "-p", "x"}), "llama.embedding_length", "zero dim");
  fs::create_symlink(t.File("loop2"), t.File("loop1"));
  fs::create_symlink(t.File("loop1"), t.File("loop2"));
  ExpectOneError(Nibble({"generate", "-m", t.File("loop1"), "-p", "x"}), "symbolic links", "symlink loop");
  ExpectOneError(Nibble({"generate", "-m", Gguf(), "-p", "x", "-c", "1000000000"}), "GiB", "-c 1e9");
  ExpectOneError(Nibble({"generate", "-m", Gguf(), "-p", "x", "-n", "-2"}), "-n", "-n -2");
  ExpectOneError(Nibble({"generate", "-m", Gguf(), "-p", "x", "--temp", "-1"}), "--temp", "--temp -1");
  ExpectOneError(Nibble({"generate", "-m", Gguf(), "-p", "x", "--top-k", "-5"}), "--top-k", "--top-k -5");
  for (const char* s : {"-2", "99999999999999999999", "12abc"})
    ExpectOneError(Nibble({"generate", "-m", Gguf(), "-p", "x", "-n", "1", "--seed", s}), "--seed", s);
  ProcResult r = Nibble({"generate", "-m", Gguf(), "-p", "x", "-n", "1", "--seed", "-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Nibble({"generate", "-m", Gguf(), "-p", "x", "-n", "1", "--seed", "18446744073709551615"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "seed 18446744073709551615")) << r.err;
}

}  // namespace
}  // namespace nibble::test
