// Instruction data against independent references: the shared JSONL files' own record
// counts and layouts (../shared/data/README.md), Stanford Alpaca's published prompt text
// (which the Dolly/HH file's prompts already carry, so the two must agree byte for byte),
// the loss mask recomputed from separately tokenized prompts, and the split, padding and
// order invariants.
#include "train/sft_data.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "nibble/error.h"
#include "train/trainer.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"
#include "util/tok512.h"

namespace nibble::train {
namespace {

InstructionFile Parse(const std::string& rel) {
  const std::string path = test::SharedData(rel);
  return ParseInstructionJsonl(path, test::ReadFileText(path));
}

std::string ErrorOf(const std::string& text) {
  try {
    ParseInstructionJsonl("d.jsonl", text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(InstructionJsonl, ReadsEveryLayoutOfTheSharedData) {
  const InstructionFile dolly = Parse("sft-dolly-hhrlhf-small/dolly_hhrlhf_train_small.jsonl");
  EXPECT_EQ(dolly.layout, DataLayout::kPromptResponse);
  EXPECT_EQ(dolly.records.size(), 1000u);  // README: 1,000 lines
  const InstructionFile gsm = Parse("sft-gsm8k/test.jsonl");
  EXPECT_EQ(gsm.layout, DataLayout::kQuestionAnswer);
  EXPECT_EQ(gsm.records.size(), 1319u);  // README: 1,319 test lines
  EXPECT_NE(gsm.records[0].output.find("#### "), std::string::npos);
  const InstructionFile seed = Parse("sft-self-instruct/seed_tasks.jsonl");
  EXPECT_EQ(seed.layout, DataLayout::kSelfInstruct);
  EXPECT_GE(seed.records.size(), 175u);  // one record per instance of the 175 tasks
  EXPECT_EQ(seed.records[0].line, 1u);
  EXPECT_EQ(seed.records.back().line, 175u);
  const InstructionFile user = Parse("sft-self-instruct/user_oriented_instructions.jsonl");
  EXPECT_GE(user.records.size(), 252u);
  const InstructionFile alpaca = ParseInstructionJsonl(
      "a.jsonl", "{\"instruction\": \"Add.\", \"input\": \"2 and 3\", \"output\": \"5\"}\n\n"
                 "{\"instruction\": \"Greet.\", \"output\": \"Hi\"}\n");
  EXPECT_EQ(alpaca.layout, DataLayout::kAlpaca);
  ASSERT_EQ(alpaca.records.size(), 2u);
  EXPECT_EQ(alpaca.records[1].line, 3u);  // blank lines count
  EXPECT_EQ(alpaca.records[1].input, "");
}

TEST(InstructionJsonl, BadLinesNameTheFileLineAndField) {
  EXPECT_EQ(ErrorOf("{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q2\"}\n"),
            "d.jsonl:2: missing field 'answer'");
  EXPECT_EQ(ErrorOf("{\"prompt\": \"p\", \"response\": 3}\n"), "d.jsonl:1: field 'response' must be a string, got number");
  EXPECT_NE(ErrorOf("{\"prompt\": \"p\", \"response\": \"r\"}\n{\"prompt\": \n").find("d.jsonl:2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(ErrorOf("{\"text\": \"t\"}\n").find("d.jsonl:1: unknown record layout (keys: text)"), std::string::npos);
  EXPECT_EQ(ErrorOf("\n  \n"), "d.jsonl: holds no records");
  EXPECT_EQ(ErrorOf("{\"instruction\": \"i\", \"instances\": [{\"input\": \"\"}]}\n"),
            "d.jsonl:1 instances[0]: missing field 'output'");
  EXPECT_EQ(ErrorOf("[1, 2]\n"), "d.jsonl:1: expected a JSON object, got array");
  // Found by the fuzzer: a number too large for a double is nlohmann's out_of_range, not a
  // parse_error; it must be the same named error.
  EXPECT_NE(ErrorOf("{\"prompt\": 1e99999, \"response\": \"r\"}\n").find("d.jsonl:1: not valid JSON"), std::string::npos);
}

// Stanford Alpaca's PROMPT_DICT (published in tatsu-lab/stanford_alpaca train.py); the
// Dolly/HH prompts were made with its no-input form, so formatting their instruction
// with --template alpaca must give each prompt back exactly.
TEST(PromptTemplates, AlpacaIsStanfordAlpacasTextAndMatchesTheDollyPrompts) {
  const InstructionRecord with{"Add the numbers.", "2 and 3", "5", 1};
  EXPECT_EQ(FormatRecord(with, PromptTemplate::kAlpaca, nullptr).prompt,
            "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n"
            "### Input:\n2 and 3\n\n### Response:\n");
  const InstructionFile dolly = Parse("sft-dolly-hhrlhf-small/dolly_hhrlhf_train_small.jsonl");
  const std::string head = "### Instruction:\n", tail = "\n\n### Response:\n";
  size_t checked = 0;
  for (const InstructionRecord& r : dolly.records) {
    const size_t a = r.instruction.find(head);
    if (a == std::string::npos || !r.instruction.ends_with(tail)) continue;
    const std::string instruction = r.instruction.substr(a + head.size(), r.instruction.size() - tail.size() - a - head.size());
    if (instruction.find("### Input:") != std::string::npos) continue;
    EXPECT_EQ(FormatRecord({instruction, "", r.output, r.line}, PromptTemplate::kAlpaca, nullptr).prompt, r.instruction)
        << "line " << r.line;
    ++checked;
  }
  EXPECT_GT(checked, 500u);
  const FormattedExample c = FormatRecord(with, PromptTemplate::kChatml, nullptr);
  EXPECT_EQ(c.prompt, "<|im_start|>user\nAdd the numbers.\n\n2 and 3<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(c.completion, "5<|im_end|>");
  EXPECT_FALSE(c.chat);  // the tokenizer's BOS, and EOS after the turn
  EXPECT_TRUE(c.parse_special);
  EXPECT_EQ(FormatRecord(with, PromptTemplate::kNone, nullptr).prompt, "Add the numbers.\n\n2 and 3");
}

TEST(PromptTemplates, AutoChoosesPerLayout) {
  EXPECT_EQ(ResolveTemplate(PromptTemplate::kAuto, DataLayout::kPromptResponse, true), PromptTemplate::kNone);
  EXPECT_EQ(ResolveTemplate(PromptTemplate::kAuto, DataLayout::kQuestionAnswer, true), PromptTemplate::kModel);
  EXPECT_EQ(ResolveTemplate(PromptTemplate::kAuto, DataLayout::kAlpaca, false), PromptTemplate::kAlpaca);
  EXPECT_EQ(ResolveTemplate(PromptTemplate::kChatml, DataLayout::kPromptResponse, true), PromptTemplate::kChatml);
  EXPECT_THROW(ParsePromptTemplate("vicuna"), ConfigError);
}

// A model's Jinja template: the prompt is the user turn with the generation prompt, the
// completion what the assistant turn adds; a template that refuses a role fails naming
// the record's line.
TEST(PromptTemplates, ModelChatTemplateSplitsAtTheGenerationPrompt) {
  const ChatTemplateText chat{
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% if m.role == 'assistant' %}{{ eos_token "
      "}}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}",
      "<s>", "</s>"};
  const FormattedExample f = FormatRecord({"Hi?", "", "Hello.", 1}, PromptTemplate::kModel, &chat);
  EXPECT_EQ(f.prompt, "<s>[user] Hi?\n[assistant] ");
  EXPECT_EQ(f.completion, "Hello.</s>\n");
  const ChatTemplateText strict{
      "{% if messages[0].role != 'system' %}{{ raise_exception('a system message is required') }}{% endif %}", "",
      ""};
  tokenizer::Tokenizer tok(test::ReadTok512Vocab());
  InstructionFile file;
  file.records = {{"Hi?", "", "Hello.", 7}};
  try {
    TokenizeInstructions(file, "x.jsonl", PromptTemplate::kModel, &strict, tok, 64, false, nullptr);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl:7: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("a system message is required"), std::string::npos) << e.what();
  }
}

// The mask recomputed from the tokenizer directly: the prompt's own tokens (BOS first)
// are not predicted, every response token and the closing EOS are.
TEST(TokenizeInstructions, MasksThePromptAndEndsWithEos) {
  tokenizer::Tokenizer tok(test::ReadTok512Vocab());
  InstructionFile file;
  file.records = {{"Once upon a time", "", " there was a cat.", 1}, {"Tom", "", " ran", 2}};
  TokenizeStats st;
  const ExampleSet s = TokenizeInstructions(file, "x.jsonl", PromptTemplate::kNone, nullptr, tok, 64, false, &st);
  ASSERT_EQ(s.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const InstructionRecord& r = file.records[i];
    const std::vector<int32_t> prompt = tok.Encode(r.instruction, true, false);
    std::vector<int32_t> full = tok.Encode(r.instruction + r.output, true, false);
    full.push_back(tok.vocab().eos_id);
    ASSERT_EQ(std::vector<int32_t>(s.tokens(i).begin(), s.tokens(i).end()), full);
    for (size_t t = 0; t + 1 < full.size(); ++t)
      EXPECT_EQ(s.targets(i)[t], t + 1 >= prompt.size() ? full[t + 1] : kIgnoreIndex) << i << " " << t;
    EXPECT_EQ(s.targets(i).back(), kIgnoreIndex);
  }
  EXPECT_EQ(st.prefix_mismatch, 0u);
  const ExampleSet all = TokenizeInstructions(file, "x.jsonl", PromptTemplate::kNone, nullptr, tok, 64, true, nullptr);
  EXPECT_EQ(all.counted_targets(), all.total_tokens() - 2);  // every position but each last
}

TEST(TokenizeInstructions, TruncatesLongRecordsAndDropsThoseWithoutAResponse) {
  tokenizer::Tokenizer tok(test::ReadTok512Vocab());
  InstructionFile file;
  const std::string long_prompt = "Once upon a time there was a little girl named Lily who liked to play outside.";
  file.records = {{long_prompt, "", " She was happy.", 1}, {"Hi", "", " " + long_prompt + " " + long_prompt, 2}};
  const size_t prompt_len = tok.Encode(long_prompt, true, false).size();
  TokenizeStats st;
  const ExampleSet s =
      TokenizeInstructions(file, "x.jsonl", PromptTemplate::kNone, nullptr, tok, prompt_len - 2, false, &st);
  EXPECT_EQ(st.dropped, 1u);  // the first keeps no response token
  EXPECT_EQ(st.truncated, 2u);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s.length(0), prompt_len - 2);
  try {
    TokenizeInstructions(file, "x.jsonl", PromptTemplate::kNone, nullptr, tok, 3, false, nullptr);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl: none of the 2 records keeps a response token within --seq-len 3"),
              std::string::npos)
        << e.what();
  }
}

TEST(PackTokens, WindowsAsRunClmGroupTexts) {
  std::vector<int32_t> stream(23);
  std::iota(stream.begin(), stream.end(), 0);
  const ExampleSet p = PackTokens(stream, 5, "x.txt");
  EXPECT_EQ(p.size(), 4u);  // 3 trailing tokens dropped
  EXPECT_EQ(std::vector<int32_t>(p.tokens(2).begin(), p.tokens(2).end()), (std::vector<int32_t>{10, 11, 12, 13, 14}));
  EXPECT_EQ(std::vector<int32_t>(p.targets(2).begin(), p.targets(2).end()),
            (std::vector<int32_t>{11, 12, 13, 14, kIgnoreIndex}));
  try {
    PackTokens(std::vector<int32_t>(4), 5, "short.txt");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("short.txt: the text has 4 tokens"), std::string::npos);
  }
}

ExampleSet Numbered(size_t n) {
  ExampleSet s;
  for (size_t i = 0; i < n; ++i) {
    const std::vector<int32_t> t(1 + i % 4, static_cast<int32_t>(i));
    s.Add(t, t);
  }
  return s;
}

TEST(SplitTrainVal, SeededDisjointAndCeilSized) {
  const ExampleSet all = Numbered(41);
  ExampleSet tr, va, tr2, va2, tr3, va3;
  SplitTrainVal(all, 0.05, 7, &tr, &va);
  EXPECT_EQ(va.size(), 3u);  // ceil(0.05 · 41)
  EXPECT_EQ(tr.size(), 38u);
  std::set<int32_t> seen;
  for (const ExampleSet* s : {&tr, &va})
    for (size_t i = 0; i < s->size(); ++i) EXPECT_TRUE(seen.insert(s->tokens(i)[0]).second);
  EXPECT_EQ(seen.size(), 41u);
  SplitTrainVal(all, 0.05, 7, &tr2, &va2);
  EXPECT_EQ(va.Fingerprint(), va2.Fingerprint());
  SplitTrainVal(all, 0.05, 8, &tr3, &va3);
  EXPECT_NE(va.Fingerprint(), va3.Fingerprint());
  EXPECT_THROW(SplitTrainVal(Numbered(1), 0.5, 1, &tr, &va), ConfigError);
}

TEST(FillPadded, PadsToTheLongestWithIgnoredTargets) {
  const ExampleSet s = Numbered(4);  // lengths 1, 2, 3, 4
  PaddedBatch b;
  const size_t ids[] = {1, 3, 0};
  FillPadded(s, ids, -7, &b);
  EXPECT_EQ(b.B, 3u);
  EXPECT_EQ(b.T, 4u);
  EXPECT_EQ(b.tokens, (std::vector<int32_t>{1, 1, -7, -7, 3, 3, 3, 3, 0, -7, -7, -7}));
  EXPECT_EQ(b.targets, (std::vector<int32_t>{1, 1, kIgnoreIndex, kIgnoreIndex, 3, 3, 3, 3, 0, kIgnoreIndex,
                                             kIgnoreIndex, kIgnoreIndex}));
}

TEST(ExampleOrder, EachEpochAFreshSeededPermutationAndSeekResumesIt) {
  ExampleOrder a(10, 3), b(10, 3), c(10, 4);
  std::vector<size_t> first, second, other;
  for (int i = 0; i < 10; ++i) first.push_back(a.Next());
  for (int i = 0; i < 10; ++i) second.push_back(a.Next());
  for (int i = 0; i < 10; ++i) other.push_back(c.Next());
  EXPECT_EQ(std::set<size_t>(first.begin(), first.end()).size(), 10u);
  EXPECT_EQ(std::set<size_t>(second.begin(), second.end()).size(), 10u);
  EXPECT_NE(first, second);  // reshuffled
  EXPECT_NE(first, other);   // seeded
  for (size_t w : first) EXPECT_EQ(b.Next(), w);
  EXPECT_DOUBLE_EQ(a.epoch(), 2.0);
  for (uint64_t k : {0u, 3u, 10u, 13u, 20u, 27u}) {
    ExampleOrder full(10, 3), resumed(10, 3);
    for (uint64_t i = 0; i < k; ++i) full.Next();
    resumed.Seek(k);
    for (int i = 0; i < 25; ++i) ASSERT_EQ(resumed.Next(), full.Next()) << "seek " << k << " draw " << i;
  }
}

}  // namespace
}  // namespace nibble::train
