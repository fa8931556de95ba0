// nibble::Finetune: load the data (packed text or instruction JSONL), build the trainer,
// run the steps with evaluation and checkpoints (resumable bit for bit), and write the
// adapter or model, metrics.jsonl and loss.svg into the run directory.
#include "nibble/finetune.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/hf_dir.h"
#include "api/loss_plot.h"
#include "api/memory_estimate.h"
#include "api/model_impl.h"
#include "api/model_loader.h"
#include "api/finetune_options.h"
#include "api/run_dir.h"
#include "core/memory_probe.h"
#include "io/atomic_writer.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "quant/registry.h"
#include "train/adapter_io.h"
#include "train/sft_data.h"
#include "train/memory_estimate.h"
#include "train/trainer.h"

namespace nibble {
namespace fs = std::filesystem;
using api::Checkpoints;
using api::kStage;
namespace {

// ---- data ----

// The files as read (and JSONL parsed) before the model loads, so a bad line fails fast.
struct RawData {
  std::string text, val_text;
  std::optional<train::InstructionFile> jsonl, val_jsonl;
};

RawData ReadRaw(const FinetuneOptions& o) {
  RawData r;
  const bool text = !o.text_path.empty();
  const std::string& path = text ? o.text_path : o.data_path;
  r.text = io::ReadRegularFile(path, text ? "training text (--text)" : "training data (--data)", io::kMaxTextFileBytes);
  if (!text) r.jsonl = train::ParseInstructionJsonl(path, r.text);
  if (!o.val_file.empty()) {
    r.val_text = io::ReadRegularFile(o.val_file, "validation data (--val-file)", io::kMaxTextFileBytes);
    if (!text) r.val_jsonl = train::ParseInstructionJsonl(o.val_file, r.val_text);
  }
  return r;
}

struct Data {
  train::ExampleSet train, val;
  std::string template_name;  // as resolved ("" for plain text)
};

Data Tokenize(const FinetuneOptions& o, const RawData& raw, const api::LoadedModel& m,
              std::vector<std::string>* notes) {
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  const size_t seq_len = static_cast<size_t>(o.seq_len);
  Data d;
  train::ExampleSet all;
  if (!raw.jsonl) {
    all = train::PackTokens(tok.Encode(raw.text, true, false), seq_len, o.text_path);
    notes->push_back(fmt::format("data: {}: plain text, {} windows of {} tokens (run_clm packing)", o.text_path,
                                 all.size(), seq_len));
    if (!o.val_file.empty()) d.val = train::PackTokens(tok.Encode(raw.val_text, true, false), seq_len, o.val_file);
  } else {
    const std::optional<std::string> model_tmpl = api::FindModelChatTemplate(m);
    const train::PromptTemplate requested = train::ParsePromptTemplate(o.template_name);
    const train::PromptTemplate t = train::ResolveTemplate(requested, raw.jsonl->layout, model_tmpl.has_value());
    train::ChatTemplateText chat;
    if (t == train::PromptTemplate::kModel) {
      if (!model_tmpl)
        throw ConfigError(fmt::format("--template model: {} has no chat template; use alpaca, chatml or none",
                                      o.model_path));
      chat.tmpl = *model_tmpl;
      const tokenizer::Vocab& v = tok.vocab();
      if (v.bos_id != tokenizer::kNoToken) chat.bos = tok.TokenPiece(v.bos_id, true);
      if (v.eos_id != tokenizer::kNoToken) chat.eos = tok.TokenPiece(v.eos_id, true);
    }
    const char* why = requested != train::PromptTemplate::kAuto ? "as asked"
                      : raw.jsonl->layout == train::DataLayout::kPromptResponse
                          ? "the prompts are already templated, used as they are"
                      : t == train::PromptTemplate::kModel ? "the model's own chat template"
                                                           : "the model has no chat template";
    d.template_name = std::string(train::TemplateName(t));
    auto load = [&](const train::InstructionFile& f, const std::string& path) {
      train::TokenizeStats st;
      train::ExampleSet s = train::TokenizeInstructions(f, path, t, t == train::PromptTemplate::kModel ? &chat : nullptr,
                                                        tok, seq_len, o.train_on_prompt, &st);
      notes->push_back(fmt::format("data: {}: {} records, layout {}; template {} ({}); loss on {}", path, st.records,
                                   train::LayoutName(f.layout), d.template_name, why,
                                   o.train_on_prompt ? "every token" : "response tokens only"));
      if (st.truncated > 0)
        notes->push_back(fmt::format("data: {}: {} records longer than --seq-len {} truncated", path, st.truncated,
                                     seq_len));
      if (st.dropped > 0)
        notes->push_back(fmt::format("data: {}: {} records dropped: no response token within --seq-len {}", path,
                                     st.dropped, seq_len));
      if (st.prefix_mismatch > 0)
        notes->push_back(fmt::format("data: {}: in {} records the prompt tokenizes differently on its own than "
                                     "followed by the response (the mask follows the prompt's own tokens, as TRL)",
                                     path, st.prefix_mismatch));
      return s;
    };
    all = load(*raw.jsonl, o.data_path);
    if (raw.val_jsonl) d.val = load(*raw.val_jsonl, o.val_file);
  }
  if (o.val_split > 0) {
    train::SplitTrainVal(all, o.val_split, o.seed, &d.train, &d.val);
    notes->push_back(fmt::format("data: {} training and {} validation examples (--val-split {}, seed {})",
                                 d.train.size(), d.val.size(), o.val_split, o.seed));
  } else {
    d.train = std::move(all);
  }
  return d;
}

// HF Trainer: max_steps = ceil(epochs · max(len(dataloader) // grad_accum, 1)),
// len(dataloader) = ceil(examples / batch).
int64_t StepsForEpochs(double epochs, size_t examples, size_t batch, size_t accum) {
  const size_t loader = (examples + batch - 1) / batch;
  const size_t per_epoch = std::max<size_t>(loader / accum, 1);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(epochs * static_cast<double>(per_epoch))));
}

// ---- the run directory ----

std::string Hex(uint64_t v) { return fmt::format("{:016x}", v); }

uint64_t Mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

// The base weights' identity: every tensor's name, shape and dtype, and its first and last
// 4 KiB (a resumed run on another base of the same shape is refused without reading it all).
uint64_t ModelFingerprint(const api::LoadedModel& m) {
  uint64_t h = 1;
  for (const api::SourceTensor& t : m.source.tensors()) {
    for (char c : t.name) h = Mix(h, static_cast<uint8_t>(c));
    for (int64_t d : t.shape.dims()) h = Mix(h, static_cast<uint64_t>(d));
    h = Mix(h, static_cast<uint64_t>(t.dtype));
    const size_t n = std::min<size_t>(t.data.size(), 4096);
    for (size_t i = 0; i < n; ++i) h = Mix(h, t.data[i]);
    for (size_t i = t.data.size() - n; i < t.data.size(); ++i) h = Mix(h, t.data[i]);
  }
  return h;
}

// What a checkpoint must share with the run that resumes it (compared field by field).
nlohmann::json RunIdentity(const FinetuneOptions& o, const train::TrainConfig& tc, const api::LoadedModel& m,
                           const Data& d) {
  const model::LlamaConfig& c = m.config;
  nlohmann::json j;
  j["model"] = {{"hidden_size", c.hidden_size},
                {"num_hidden_layers", c.num_hidden_layers},
                {"num_attention_heads", c.num_attention_heads},
                {"num_key_value_heads", c.num_key_value_heads},
                {"intermediate_size", c.intermediate_size},
                {"vocab_size", c.vocab_size},
                {"weights", Hex(ModelFingerprint(m))}};
  j["method"] = o.method;
  j["optim"] = std::string(optim::StateName(tc.optim.kind));  // paged or not: the same state
  if (o.method == "qlora" || o.load_in_8bit)
    j["base"] = {{"quantization", o.load_in_8bit ? "int8" : o.bnb_4bit_quant_type},
                 {"double_quant", o.method == "qlora" && o.bnb_4bit_use_double_quant},
                 {"compute_dtype", api::ResolvedComputeDtype(o)}};
  if (tc.method == train::Method::kLora) {
    std::vector<std::string> targets = o.target_modules;
    std::sort(targets.begin(), targets.end());
    j["lora"] = {{"r", o.r},
                 {"lora_alpha", o.lora_alpha},
                 {"lora_dropout", o.lora_dropout},
                 {"target_modules", targets},
                 {"use_rslora", o.use_rslora},
                 {"init_lora_weights", o.init_lora_weights}};
  }
  j["seq_len"] = o.seq_len;
  j["per_device_train_batch_size"] = o.batch_size;
  j["gradient_accumulation_steps"] = o.grad_accum;
  j["max_steps"] = tc.max_steps;
  j["learning_rate"] = o.lr;
  j["lr_scheduler_type"] = o.lr_scheduler;
  j["warmup_steps"] = o.warmup_steps;
  j["weight_decay"] = o.weight_decay;
  j["max_grad_norm"] = o.max_grad_norm;
  j["seed"] = o.seed;
  j["data"] = {{"train", Hex(d.train.Fingerprint())}, {"validation", Hex(d.val.Fingerprint())},
               {"template", d.template_name}, {"train_on_prompt", o.train_on_prompt}};
  return j;
}

void CheckSameRun(const nlohmann::json& saved, const nlohmann::json& now, const std::string& ckpt) {
  const nlohmann::json a = saved.flatten(), b = now.flatten();
  for (const auto& [key, value] : b.items()) {
    const auto it = a.find(key);
    const std::string field = key.substr(1);  // "/lora/r" -> "lora/r"
    if (it == a.end())
      throw ConfigError(fmt::format("--resume-from-checkpoint {}: the checkpoint does not record '{}'; it comes from "
                                    "another kind of run",
                                    ckpt, field));
    if (*it != value)
      throw ConfigError(fmt::format("--resume-from-checkpoint {}: '{}' differs: the checkpoint has {}, this run has {}",
                                    ckpt, field, it->dump(), value.dump()));
  }
  for (const auto& [key, value] : a.items())
    if (!b.contains(key))
      throw ConfigError(fmt::format("--resume-from-checkpoint {}: '{}' differs: the checkpoint has {}, this run has "
                                    "none",
                                    ckpt, key.substr(1), value.dump()));
}

// ---- writing ----

// The trained parameters of a checkpoint or final output, read back into `params`.
void ReadTrainedParams(const std::string& dir, const api::LoadedModel& m, const train::Trainer& tr, float* params) {
  if (tr.config().method == train::Method::kLora) {
    train::ReadLoraWeights(dir, tr.index(), params, &m.config);
    return;
  }
  train::ReadParamTensors((fs::path(dir) / "model.safetensors").string(), tr.index(), params);
  for (const model::ParamEntry& e : tr.index().entries())
    if (const int64_t heads = model::RopeRowHeads(m.config, e.name))
      model::PermuteRopeRows(params + e.offset, heads, m.config.HeadDim(), e.shape.rank() == 2 ? e.shape[1] : 1,
                             /*to_hf=*/false);
}

void WriteOutputs(api::HfDirWriter& w, const FinetuneOptions& o, const api::LoadedModel& m, const train::Trainer& tr) {
  if (tr.config().method == train::Method::kLora) {
    train::WriteLoraAdapter(w.atomic(), *tr.lora(), tr.index(), tr.params(), o.model_path, m.config);
    w.Add("adapter_config.json");
    w.Add("adapter_model.safetensors");
  } else {
    api::WriteHfModel(w, m, tr.index(), tr.params(), DType::kF32);
  }
}

void WriteFileAtomically(const std::string& path, std::string_view text) {
  io::AtomicWriter f(path, io::Existing::kReplace);
  f.Write(text.data(), text.size());
  f.Commit();
}

struct Log {
  std::vector<nlohmann::json> rows;  // the HF Trainer's log_history
  double pending_loss = 0;           // training losses since the last logged row
  int64_t pending = 0;

  std::string Jsonl() const {
    std::string s;
    for (const nlohmann::json& r : rows) s += r.dump() + "\n";
    return s;
  }
  std::string Svg(const std::string& title) const {
    std::vector<api::LossPoint> train, eval;
    for (const nlohmann::json& r : rows) {
      if (r.contains("loss")) train.push_back({r["step"].get<double>(), r["loss"].get<double>()});
      if (r.contains("eval_loss")) eval.push_back({r["step"].get<double>(), r["eval_loss"].get<double>()});
    }
    return api::LossCurveSvg(train, eval, title);
  }
};

double EvalLoss(train::Trainer& tr, const train::ExampleSet& val, size_t batch, int32_t pad) {
  double sum = 0;
  size_t n = 0;
  train::PaddedBatch pb;
  std::vector<size_t> ids;
  for (size_t i = 0; i < val.size(); i += batch) {
    ids.clear();
    for (size_t k = i; k < std::min(i + batch, val.size()); ++k) ids.push_back(k);
    train::FillPadded(val, ids, pad, &pb);
    size_t c = 0;
    sum += tr.EvaluateBatch({pb.tokens, pb.targets, pb.B, pb.T}, &c);
    n += c;
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

FinetuneReport Run(const Model& model, const FinetuneOptions& o, const RawData& raw);
FinetuneReport Train(const Model& model, const FinetuneOptions& o, const Data& d, const train::TrainConfig& tc,
                     const std::string& ckpt, const nlohmann::json& identity, const nlohmann::json& state,
                     const std::vector<std::string>& inputs);

}  // namespace

FinetuneReport Finetune(const FinetuneOptions& options) {
  const FinetuneOptions o = api::WithMethodDefaults(options);
  api::CheckFinetuneOptions(o);
  api::TrainConfigFrom(o);  // every option checked before the model loads
  const RawData raw = ReadRaw(o);
  const Model model(api::QuantizedBaseOptions(o, api::ModelOptionsFrom(o)));
  return Run(model, o, raw);
}

FinetuneReport Finetune(const Model& model, const FinetuneOptions& options) {
  // The model's files, for the checks, the messages and the adapter config.
  FinetuneOptions o = api::WithMethodDefaults(options);
  o.model_path = model.options().model_path;
  o.tokenizer_path = model.options().tokenizer_path;
  api::CheckFinetuneOptions(o);
  api::TrainConfigFrom(o);
  return Run(model, o, ReadRaw(o));
}

namespace {

FinetuneReport Run(const Model& model, const FinetuneOptions& o, const RawData& raw) {
  train::TrainConfig tc = api::TrainConfigFrom(o);
  const api::LoadedModel* loaded = model.impl().loaded.get();
  if (loaded->tokenizer == nullptr) throw ConfigError("finetune: the model was loaded without its tokenizer");
  const model::LlamaConfig& cfg = loaded->config;
  if (o.seq_len > cfg.max_position_embeddings)
    throw ConfigError(fmt::format("option 'seq_len': {} exceeds the model's context of {} tokens "
                                  "(max_position_embeddings of {})",
                                  o.seq_len, cfg.max_position_embeddings, o.model_path));
  auto note = [&](const std::string& s) {
    if (o.on_message) o.on_message(s);
  };
  std::vector<std::string> notes;
  api::CheckQuantizedBase(o, *loaded, &notes);
  api::CheckMaxMemory(o, *loaded, model.options().num_threads > 0 ? model.options().num_threads
                                                                 : ExecContext(0).num_threads());
  const Data d = Tokenize(o, raw, *loaded, &notes);
  tc.max_steps = o.max_steps > 0 ? o.max_steps
                                 : StepsForEpochs(o.epochs, d.train.size(), tc.batch_size,
                                                  static_cast<size_t>(tc.grad_accum));
  const nlohmann::json identity = RunIdentity(o, tc, *loaded, d);

  // Everything about the checkpoint is checked before OUT is touched or the trainer built.
  const std::string ckpt = api::FindCheckpoint(o);
  nlohmann::json state;
  if (!ckpt.empty()) {
    state = io::ReadJsonObject((fs::path(ckpt) / "trainer_state.json").string(), "trainer state");
    if (!state.contains("nibble") || !state["nibble"].contains("run"))
      throw ConfigError(fmt::format("--resume-from-checkpoint {}: trainer_state.json was not written by nibble", ckpt));
    nlohmann::json saved = state["nibble"]["run"];
    if (saved.is_object() && !saved.contains("optim")) saved["optim"] = "adamw_torch";  // written before --optim
    CheckSameRun(saved, identity, ckpt);
  }
  std::vector<std::string> inputs = {o.model_path, o.text_path.empty() ? o.data_path : o.text_path};
  if (!o.tokenizer_path.empty()) inputs.push_back(o.tokenizer_path);
  if (!o.val_file.empty()) inputs.push_back(o.val_file);
  const bool created = api::PrepareRunDir(o, !ckpt.empty(), inputs, &notes);
  for (const std::string& s : notes) note(s);
  try {
    return Train(model, o, d, tc, ckpt, identity, state, inputs);
  } catch (...) {
    // A run that fails before its first checkpoint leaves no directory it created behind.
    if (created && Checkpoints(o.out_dir).empty()) io::RemoveOutputDir(o.out_dir);
    throw;
  }
}

FinetuneReport Train(const Model& model, const FinetuneOptions& o, const Data& d, const train::TrainConfig& tc,
                     const std::string& ckpt, const nlohmann::json& identity, const nlohmann::json& state,
                     const std::vector<std::string>& inputs) {
  const api::LoadedModel* loaded = model.impl().loaded.get();
  const model::LlamaConfig& cfg = loaded->config;
  ExecContext ctx(model.options().num_threads);  // the trainer's buffers and scratch
  const bool has_val = d.val.size() > 0;
  auto note = [&](const std::string& s) {
    if (o.on_message) o.on_message(s);
  };
  train::Trainer tr(*loaded->model, tc, ctx);
  if (tr.memory().optimizer_paged > 0)
    note(fmt::format("optimizer: {:.1f} MiB of {} state paged to an unlinked file in {}{}",
                     static_cast<double>(tr.memory().optimizer_paged) / 1048576.0,
                     o.optim, tc.paged_dir,
                     optim::PagedArena::OnTmpfs(tc.paged_dir)
                         ? " -- warning: that directory is a tmpfs (RAM), where pages leave memory only through "
                           "swap; give --paged-dir on a disk"
                         : ""));
  if (tc.method == train::Method::kFull) {
    // The weights now live in the trainer's f32 buffer: the mapped file's pages need not stay
    // resident (513 MiB of SmolLM2-135M's peak RSS).
    for (const auto& t : loaded->source.tensors()) io::DropPages(t.data);
  }
  train::ExampleOrder order(d.train.size(), o.seed);
  const tokenizer::Vocab& vocab = loaded->tokenizer->vocab();
  const int32_t pad = vocab.pad_id != tokenizer::kNoToken ? vocab.pad_id
                      : vocab.eos_id != tokenizer::kNoToken ? vocab.eos_id
                                                            : 0;
  Log log;
  int64_t start = 0;
  if (!ckpt.empty()) {
    try {
      const size_t n = tr.index().total();
      std::vector<float> params(n);
      ReadTrainedParams(ckpt, *loaded, tr, params.data());
      start = state.at("global_step").get<int64_t>();
      if (start < 1 || start > tc.max_steps)
        throw ConfigError(fmt::format("--resume-from-checkpoint {}: global_step {} is outside 1..{}", ckpt, start,
                                      tc.max_steps));
      tr.Restore(start, params.data());
      train::ReadOptimizerState((fs::path(ckpt) / "optimizer.safetensors").string(), tr.index(),
                                tr.mutable_optimizer());
      const nlohmann::json& nb = state["nibble"];
      order.Seek(nb.at("samples_seen").get<uint64_t>());
      log.pending_loss = nb.at("pending_loss").get<double>();
      log.pending = nb.at("pending_steps").get<int64_t>();
      for (const nlohmann::json& r : state.at("log_history")) {
        if (!r.is_object() || !r.contains("step")) throw ConfigError("a log_history row without 'step'");
        log.rows.push_back(r);
      }
      note(fmt::format("resumed from {} at step {} of {}", ckpt, start, tc.max_steps));
      if (nb.value("num_threads", 0) != ctx.num_threads())
        note(fmt::format("the checkpoint ran on {} threads, this run on {}: the remaining losses may differ from an "
                         "uninterrupted run in their last bits (a norm's gradient is summed per thread)",
                         nb.value("num_threads", 0), ctx.num_threads()));
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError(fmt::format("--resume-from-checkpoint {}: trainer_state.json: {}", ckpt, e.what()));
    } catch (const ConfigError& e) {
      if (std::string_view(e.what()).starts_with("--resume")) throw;
      throw ConfigError(fmt::format("--resume-from-checkpoint {}: {}", ckpt, e.what()));
    }
  }

  FinetuneReport r;
  r.method = o.method;
  r.resumed_from_step = start;
  r.text_tokens = d.train.total_tokens();
  r.windows = d.train.size();
  r.val_examples = d.val.size();
  r.trainable_params = tr.num_trainable();
  model::ForEachRole(cfg, [&](const model::RoleAt& ra) { r.total_params += ra.role->ShapeIn(cfg).NumElems(); });
  if (tc.method == train::Method::kLora) r.total_params += r.trainable_params;
  const std::string title = fmt::format("nibble finetune --method {}: {}", o.method,
                                        fs::path(o.model_path).filename().string());

  auto evaluate = [&](int64_t step) {
    const double loss = EvalLoss(tr, d.val, tc.batch_size, pad);
    log.rows.push_back({{"step", step}, {"eval_loss", loss}, {"epoch", order.epoch()}});
    if (o.on_eval) o.on_eval(step, loss);
    return loss;
  };
  auto write_logs = [&] {
    WriteFileAtomically((fs::path(o.out_dir) / "metrics.jsonl").string(), log.Jsonl());
    WriteFileAtomically((fs::path(o.out_dir) / "loss.svg").string(), log.Svg(title));
  };
  auto save = [&](int64_t step) {
    const std::string path = (fs::path(o.out_dir) / fmt::format("checkpoint-{}", step)).string();
    api::HfDirWriter w(path, fs::exists(path), inputs);
    WriteOutputs(w, o, *loaded, tr);
    train::WriteOptimizerState(w.atomic(), tr.index(), tr.optimizer());
    nlohmann::json s = {{"global_step", step},
                        {"epoch", order.epoch()},
                        {"max_steps", tc.max_steps},
                        {"logging_steps", o.logging_steps},
                        {"eval_steps", o.eval_every},
                        {"save_steps", o.save_every},
                        {"train_batch_size", o.batch_size},
                        {"log_history", log.rows}};
    // The data position and the RNG state: the shuffles and the dropout masks are
    // counter-based (seed, epoch, step), so the seed and the counters are the whole state.
    s["nibble"] = {{"run", identity},
                   {"samples_seen", order.visited()},
                   {"rng", {{"seed", o.seed}, {"dropout_counter", step * o.grad_accum}}},
                   {"pending_loss", log.pending_loss},
                   {"pending_steps", log.pending},
                   {"num_threads", ctx.num_threads()}};
    w.WriteText("trainer_state.json", s.dump(2) + "\n");
    w.Commit();
    write_logs();
    if (o.save_total_limit > 0) {
      auto all = Checkpoints(o.out_dir);
      for (size_t i = 0; i + static_cast<size_t>(o.save_total_limit) < all.size(); ++i)
        if (all[i].first != step && !io::RemoveOutputDir(all[i].second.string()))
          note(fmt::format("{}: holds files nibble did not write; not removed", all[i].second.string()));
    }
    note(fmt::format("saved {}", path));
  };

  if (has_val && start == 0) r.first_eval_loss = evaluate(0);
  const size_t B = tc.batch_size, accum = static_cast<size_t>(tc.grad_accum);
  std::vector<train::PaddedBatch> pb(accum);
  std::vector<train::TokenBatch> tb(accum);
  std::vector<size_t> ids(B);
  const auto t0 = std::chrono::steady_clock::now();
  // A run resumed from its last step's checkpoint already holds that step's evaluation.
  bool evaluated_last = start > 0 && !log.rows.empty() && log.rows.back().contains("eval_loss") &&
                        log.rows.back()["step"].get<int64_t>() == start;
  for (int64_t s = start; s < tc.max_steps; ++s) {
    size_t step_tokens = 0;
    for (size_t k = 0; k < accum; ++k) {
      for (size_t b = 0; b < B; ++b) ids[b] = order.Next();
      train::FillPadded(d.train, ids, pad, &pb[k]);
      tb[k] = {pb[k].tokens, pb[k].targets, pb[k].B, pb[k].T};
      step_tokens += pb[k].B * pb[k].T;
    }
    const auto ts = std::chrono::steady_clock::now();
    const train::StepResult sr = tr.Step(tb);
    const auto te = std::chrono::steady_clock::now();
    if (s == start) r.first_loss = sr.loss;
    r.last_loss = sr.loss;
    r.tokens += step_tokens;
    log.pending_loss += sr.loss;
    ++log.pending;
    if (sr.step % o.logging_steps == 0 || sr.step == tc.max_steps) {
      // HF Trainer's log_history row: the mean training loss since the last row.
      log.rows.push_back({{"step", sr.step},
                          {"loss", log.pending_loss / static_cast<double>(log.pending)},
                          {"learning_rate", sr.lr},
                          {"grad_norm", sr.grad_norm},
                          {"epoch", order.epoch()}});
      log.pending_loss = 0;
      log.pending = 0;
    }
    if (o.on_step)
      o.on_step({sr.step, tc.max_steps, sr.loss, sr.lr, sr.grad_norm, order.epoch(),
                 static_cast<double>(step_tokens) / std::chrono::duration<double>(te - ts).count(),
                 std::chrono::duration<double>(te - t0).count()});
    evaluated_last = false;
    if (has_val && o.eval_every > 0 && sr.step % o.eval_every == 0) {
      r.last_eval_loss = evaluate(sr.step);
      evaluated_last = true;
    }
    if (o.save_every > 0 && sr.step % o.save_every == 0) save(sr.step);
  }
  if (has_val && !evaluated_last) r.last_eval_loss = evaluate(tc.max_steps);
  r.steps = tc.max_steps;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.tokens_per_s = r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0;

  // The estimate beside what the run held (docs/MEMORY.md).
  std::string storage;
  const train::MemoryComponents est = train::EstimateTrainingMemory(
      cfg, api::EstimateOptionsFor(o, &loaded->source, "", ctx.num_threads(), &storage));
  uint64_t converted = 0;
  for (const Tensor& t : loaded->owned) converted += t.num_bytes();
  const train::MemoryComponents meas = train::MeasuredTrainingMemory(tr, *loaded->model, converted);
  r.peak_rss_bytes = ReadRss().peak_bytes;
  nlohmann::json mj = {{"estimate", est.ToJson()}, {"measured", meas.ToJson()}};
  mj["measured"]["peak_rss"] = r.peak_rss_bytes;
  mj["base_storage"] = storage;
  r.memory_json = mj.dump(2) + "\n";
  r.estimate_total = static_cast<double>(est.total());
  r.measured_total = static_cast<double>(meas.total());
  r.compute_dtype = api::ResolvedComputeDtype(o);
  {
    const std::string stage = (fs::path(o.out_dir) / kStage).string();
    api::HfDirWriter w(stage, false, inputs);
    WriteOutputs(w, o, *loaded, tr);
    w.WriteText("memory.json", r.memory_json);
    w.WriteText("metrics.jsonl", log.Jsonl());
    w.WriteText("loss.svg", log.Svg(title));
    r.files = w.Commit();
    api::MoveStagedFiles(o.out_dir);
  }

  const train::TrainMemory mem = tr.memory();
  r.weight_bytes = mem.weights;
  r.gradient_bytes = mem.gradients;
  r.optimizer_bytes = mem.optimizer;
  r.activation_bytes = mem.activations;
  r.logits_bytes = mem.logits;
  r.scratch_bytes = mem.scratch;
  r.optimizer_paged_bytes = mem.optimizer_paged;
  for (const auto& t : loaded->source.tensors()) r.base_mapped_bytes += t.data.size();
  return r;
}

}  // namespace
}  // namespace nibble
