// The reliability suite (issue 12): the real nibble binary, run the way a careless or
// hostile user (or a crash) would run it, in a temporary directory, with bounded loops and
// timeouts. Each test is named after the defect it proves fixed; all but one (the
// concurrent-exports guard) failed at e9ed95b.
//
// Here: --threads, bounded inputs, stdout write errors, non-finite weights, chat and the
// messages of the validation gaps.
#include "reliability/reliability_util.h"

namespace nibble::test {
namespace {

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
