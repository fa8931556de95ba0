// kill -9 during fine-tuning's checkpoint saves (issue 14): the real CLI, killed through
// the writers' fault injection (NIBBLE_CRASH_AT=k: SIGKILL at the k-th crash point) at nine
// points spread evenly over a run that saves checkpoint-2, checkpoint-4 and its final
// files. After each kill every checkpoint-N on disk must be complete, and the run resumed
// from "latest" (or started over when none exists yet) must end with the uninterrupted
// run's metrics.jsonl and adapter, byte for byte.
#include "reliability/reliability_util.h"

namespace nibble::test {
namespace {

std::vector<std::string> FinetuneArgs(const std::string& out) {
  return {"finetune", "-m", Bin(), "--text", Text(), "--method", "lora", "--target-modules", "all-linear",
          "--lora-dropout", "0.1", "--seq-len", "32", "--batch-size", "2", "--max-steps", "4", "--save-every", "2",
          "--lr", "1e-2", "--val-split", "0.1", "--eval-every", "2", "-t", Tok(), "--threads", "2", "-o", out};
}

TEST(FinetuneCrash, Kill9DuringASaveLeavesThePreviousCheckpointAndResumesBitForBit) {
  TempDir t;
  const std::string ref = t.File("ref");
  const std::string count_file = t.File("count");
  ProcOptions counting;
  counting.env.push_back("NIBBLE_CRASH_COUNT=" + count_file);
  ProcResult r = Nibble(FinetuneArgs(ref), counting);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long points = std::atol(ReadBytes(count_file).c_str());
  ASSERT_GT(points, 20) << "crash points not counted";
  const std::string want_metrics = ReadBytes(ref + "/metrics.jsonl");
  const std::string want_adapter = ReadBytes(ref + "/adapter_model.safetensors");
  ASSERT_FALSE(want_metrics.empty());

  int only_first = 0, resumed = 0, fresh = 0;
  std::set<long> ks;
  for (int i = 1; i <= 9; ++i) ks.insert(std::max(1L, points * i / 10));
  for (const long k : ks) {
    SCOPED_TRACE("killed at crash point " + std::to_string(k) + " of " + std::to_string(points));
    const std::string out = t.File("run" + std::to_string(k));
    ProcOptions crash;
    crash.env.push_back("NIBBLE_CRASH_AT=" + std::to_string(k));
    r = Nibble(FinetuneArgs(out), crash);
    ASSERT_EQ(r.signal, SIGKILL) << "exit " << r.exit_code << "\n" << r.err;
    const bool c2 = fs::exists(out + "/checkpoint-2"), c4 = fs::exists(out + "/checkpoint-4");
    for (const char* c : {"checkpoint-2", "checkpoint-4"}) {
      if (!fs::exists(out + "/" + c)) continue;
      for (const char* f : {"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors",
                            "trainer_state.json"})
        EXPECT_TRUE(fs::exists(out + "/" + c + "/" + f)) << c << "/" << f;
    }
    only_first += c2 && !c4;
    std::vector<std::string> next = FinetuneArgs(out);
    if (c2 || c4) {
      next.insert(next.end(), {"--resume-from-checkpoint", "latest"});
      ++resumed;
    } else {
      next.push_back("--overwrite");  // OUT may exist, with a temporary of the first save
      ++fresh;
    }
    r = Nibble(next);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ReadBytes(out + "/metrics.jsonl"), want_metrics);
    EXPECT_EQ(ReadBytes(out + "/adapter_model.safetensors"), want_adapter);
    EXPECT_EQ(CountTemporaries(out), 0);
  }
  // The spread reaches both sides of the first save and the inside of the second.
  EXPECT_GT(only_first, 0);
  EXPECT_GT(resumed, 0);
  EXPECT_GT(fresh, 0);
}

}  // namespace
}  // namespace nibble::test
