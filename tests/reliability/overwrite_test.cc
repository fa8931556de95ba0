// The reliability suite (issue 12): the real nibble binary, run the way a careless or
// hostile user (or a crash) would run it, in a temporary directory, with bounded loops and
// timeouts. Each test is named after the defect it proves fixed; all but one (the
// concurrent-exports guard) failed at e9ed95b.
//
// Here: what --overwrite may replace, inputs never overwritten, unique temporaries
// (symlinks at the old names, concurrent writers) and atomic replacement (a watcher,
// random kill -9 around a replacement).
#include "reliability/reliability_util.h"

namespace nibble::test {
namespace {

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

}  // namespace
}  // namespace nibble::test
