// QLoRA and the memory options end to end on stories260K: every method and optimizer
// trains (the loss falls), OUT/memory.json holds the estimate beside the measurement and
// they agree (the buffers exactly, scratch within 10 %), 8-bit optimizer checkpoints
// resume bit for bit (a paged run resumes an unpaged one's checkpoint), and the errors
// name what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/text_file.h"
#include "nibble/error.h"
#include "nibble/finetune.h"
#include "nibble/quantize.h"
#include "util/temp_dir.h"
#include "util/test_paths.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;

// Tiny Shakespeare's first 40 KB to train on and the next 2 KB to validate with (a domain
// stories260K has not seen, so a few steps lower the validation loss clearly).
struct Texts {
  test::TempDir dir;
  std::string train = dir.File("train.txt"), val = dir.File("val.txt");
  Texts() {
    const std::string all = io::ReadRegularFile(test::SharedData("text-tinyshakespeare/input.txt"), "text",
                                                io::kMaxTextFileBytes);
    std::ofstream(train) << all.substr(0, 40000);
    std::ofstream(val) << all.substr(40000, 2000);
  }
};
const Texts& TheTexts() {
  static const Texts t;
  return t;
}

FinetuneOptions Tiny(const std::string& method, const std::string& out) {
  FinetuneOptions o;
  o.model_path = test::SourcePath("assets/stories260K/stories260K.bin");
  o.text_path = TheTexts().train;
  o.val_file = TheTexts().val;
  o.out_dir = out;
  o.method = method;
  o.seq_len = 32;
  o.batch_size = 4;
  o.max_steps = 8;
  o.lr = method == "full" ? 3e-3 : 1e-2;
  o.num_threads = 2;
  return o;
}

nlohmann::json ReadJson(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

struct Case {
  const char* method;
  const char* optim;
  bool checkpointing;
  const char* quant_type;  // qlora
  bool double_quant;
  bool load_in_8bit;
};

// Each method and optimizer trains, and memory.json's estimate equals the measured buffers
// (weights, constants, gradients, optimizer state, activations and logits are the same
// formulas the allocations follow: equal to the byte) with the scratch peak within 10 %.
TEST(Qlora, EveryMethodTrainsAndTheEstimateMatchesTheMeasurement) {
  const Case cases[] = {
      {"full", "adamw_torch", false, "", false, false},     {"full", "adamw_8bit", true, "", false, false},
      {"lora", "paged_adamw_32bit", false, "", false, false}, {"lora", "adamw_torch", false, "", false, true},
      {"qlora", "adamw_torch", false, "nf4", true, false},   {"qlora", "paged_adamw_8bit", true, "fp4", false, false},
  };
  test::TempDir dir;
  for (const Case& c : cases) {
    const std::string name = std::string(c.method) + "-" + c.optim + (c.checkpointing ? "-ckpt" : "") + c.quant_type +
                             (c.load_in_8bit ? "-int8" : "");
    FinetuneOptions o = Tiny(c.method, dir.File(name));
    o.optim = c.optim;
    o.gradient_checkpointing = c.checkpointing;
    o.load_in_8bit = c.load_in_8bit;
    if (*c.quant_type) o.bnb_4bit_quant_type = c.quant_type;
    o.bnb_4bit_use_double_quant = c.double_quant;
    const FinetuneReport r = Finetune(o);
    EXPECT_TRUE(std::isfinite(r.last_loss)) << name;
    EXPECT_LT(r.last_eval_loss, r.first_eval_loss - 0.05) << name;
    const nlohmann::json mj = ReadJson(fs::path(o.out_dir) / "memory.json");
    const nlohmann::json& e = mj["estimate"]["components"];
    const nlohmann::json& m = mj["measured"]["components"];
    for (const char* k : {"weights", "quant_constants", "gradients", "optimizer_state", "optimizer_paged",
                          "activations", "logits"})
      EXPECT_EQ(e[k], m[k]) << name << " " << k;
    const double es = e["scratch"].get<double>(), ms = m["scratch"].get<double>();
    EXPECT_NEAR(es, ms, 0.1 * ms) << name << " scratch";
    const double et = mj["estimate"]["total"].get<double>(), mt = mj["measured"]["total"].get<double>();
    EXPECT_NEAR(et, mt, 0.1 * mt) << name;
    EXPECT_GT(mj["measured"]["peak_rss"].get<double>(), 0) << name;
    if (std::string(c.method) == "qlora") {
      EXPECT_GT(m["quant_constants"].get<double>(), 0) << name;
      EXPECT_EQ(mj["base_storage"], std::string(c.quant_type) + (c.double_quant ? " + double quant" : "")) << name;
      // all-linear by default: 7 modules per layer
      const nlohmann::json ac = ReadJson(fs::path(o.out_dir) / "adapter_config.json");
      EXPECT_EQ(ac["target_modules"].size(), 7u) << name;
    }
  }
}

// An 8-bit optimizer's checkpoint (state1/state2/absmax1/absmax2) resumes bit for bit, and
// a paged run resumes it (the state file is the same whether paged or not).
TEST(Qlora, EightBitOptimizerCheckpointResumesBitForBit) {
  test::TempDir dir;
  FinetuneOptions o = Tiny("full", dir.File("a"));
  o.optim = "adamw_8bit";
  o.save_every = 3;
  Finetune(o);
  const nlohmann::json st = ReadJson(dir.path() / "a" / "checkpoint-3" / "trainer_state.json");
  EXPECT_EQ(st["nibble"]["run"]["optim"], "bnb_adamw_8bit");
  {
    const std::string f = (dir.path() / "a" / "checkpoint-3" / "optimizer.safetensors").string();
    const std::string bytes = io::ReadRegularFile(f, "optimizer state", 1 << 26);
    EXPECT_NE(bytes.find("state1.model.embed_tokens.weight"), std::string::npos);
    EXPECT_NE(bytes.find("absmax2.model.embed_tokens.weight"), std::string::npos);
    EXPECT_NE(bytes.find("exp_avg.model.norm.weight"), std::string::npos);  // 64 elements: 32-bit state
  }
  o.out_dir = dir.File("b");
  o.optim = "paged_adamw_8bit";
  o.resume_from = dir.File("a/checkpoint-3");
  const FinetuneReport rb = Finetune(o);
  EXPECT_EQ(rb.resumed_from_step, 3);
  auto read = [&](const char* run, const char* file) {
    return io::ReadRegularFile((dir.path() / run / file).string(), file, 1 << 26);
  };
  EXPECT_EQ(read("a", "metrics.jsonl"), read("b", "metrics.jsonl"));
  EXPECT_EQ(read("a", "model.safetensors"), read("b", "model.safetensors"));
  // Another optimizer's checkpoint is refused naming the field.
  o.out_dir = dir.File("c");
  o.optim = "adamw_torch";
  try {
    Finetune(o);
    FAIL() << "resumed an 8-bit checkpoint with adamw_torch";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'optim' differs"), std::string::npos) << e.what();
  }
}

// QLoRA over a bnb 4-bit checkpoint trains through its stored codes; over an LLM.int8()
// checkpoint it is refused naming the format; unknown names list the known ones.
TEST(Qlora, CheckpointBasesAndErrors) {
  test::TempDir dir;
  QuantizeOptions q;
  q.method = "nf4";
  q.double_quant = true;
  Quantize(test::SourcePath("assets/stories260K/stories260K.bin"), dir.File("nf4"), q);
  FinetuneOptions o = Tiny("qlora", dir.File("run"));
  o.model_path = dir.File("nf4");
  std::vector<std::string> messages;
  o.on_message = [&](const std::string& m) { messages.push_back(m); };
  const FinetuneReport r = Finetune(o);
  EXPECT_LT(r.last_eval_loss, r.first_eval_loss - 0.05);
  bool stored = false;
  for (const std::string& m : messages) stored |= m.find("used as the checkpoint stores them") != std::string::npos;
  EXPECT_TRUE(stored);

  q.method = "int8";
  q.double_quant = false;
  Quantize(test::SourcePath("assets/stories260K/stories260K.bin"), dir.File("int8"), q);
  auto error = [](const FinetuneOptions& f) -> std::string {
    try {
      Finetune(f);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  FinetuneOptions b = Tiny("qlora", dir.File("bad"));
  b.model_path = dir.File("int8");
  EXPECT_NE(error(b).find("LLM.int8() (8-bit); --method qlora trains through a 4-bit"), std::string::npos)
      << error(b);
  b = Tiny("lora", dir.File("bad"));
  b.optim = "adafactor";
  EXPECT_NE(error(b).find("paged_adamw_8bit"), std::string::npos);
  b = Tiny("qlora", dir.File("bad"));
  b.bnb_4bit_quant_type = "int4";
  EXPECT_NE(error(b).find("'bnb_4bit_quant_type'"), std::string::npos);
  b = Tiny("full", dir.File("bad"));
  b.load_in_8bit = true;
  EXPECT_NE(error(b).find("needs --method lora"), std::string::npos);
  b = Tiny("full", dir.File("bad"));
  b.max_memory = "1MiB";  // the tiny model's full fine-tuning needs ~5 MiB
  EXPECT_NE(error(b).find("--max-memory 1MiB: this run needs about"), std::string::npos) << error(b);
  EXPECT_NE(error(b).find("even with --optim paged_adamw_8bit --gradient-checkpointing"), std::string::npos);
  b.max_memory = "lots";
  EXPECT_NE(error(b).find("option 'max_memory': expected a size"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path() / "bad"));
}

}  // namespace
}  // namespace nibble
