// Writing and reading quantized Linear weights in the bitsandbytes / transformers layout
// (spec §6) and nibble's own layout; the quant-state JSON formatted byte-exactly.
#include "io/bnb_checkpoint.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "core/float_convert.h"
#include "nibble/error.h"
#include "quant/formats/fp4/fp4.h"
#include "quant/formats/nf4/nf4.h"
#include "quant/registry.h"

namespace nibble::io {
namespace {

using json = nlohmann::json;
using quant::QTensor;
using quant::QuantMethod;

constexpr std::string_view kBnbStatePrefix = ".weight.quant_state.bitsandbytes__";
constexpr std::string_view kNibbleState = ".weight.quant_state.nibble";

std::span<const uint8_t> Bytes(const void* p, size_t n) { return {static_cast<const uint8_t*>(p), n}; }

bool IsPowerOfTwo(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

std::string ShapeJson(const Shape& s) {
  std::string out = "[";
  for (int i = 0; i < s.rank(); ++i) out += (i ? ", " : "") + std::to_string(s.dims()[i]);
  return out + "]";
}

// Copies a float tensor (F32, F16, BF16) widened exactly to f32 into an owned array.
std::span<const float> WidenedCopy(QTensor& q, Allocator& alloc, const RawTensor& t, const std::string& where) {
  const int64_t n = t.shape.NumElems();
  if (t.data.size() != DTypeBytes(t.dtype, static_cast<uint64_t>(n)))
    throw FormatError(fmt::format("{}: {} bytes for shape {} of {}", where, t.data.size(), t.shape.ToString(),
                                  DTypeName(t.dtype)));
  q.owned.emplace_back(alloc, DType::kF32, Shape{n});
  auto* out = static_cast<float*>(q.owned.back().data());
  for (int64_t i = 0; i < n; ++i) {
    if (t.dtype == DType::kF32) {
      std::memcpy(&out[i], t.data.data() + 4 * i, 4);
    } else if (t.dtype == DType::kF16 || t.dtype == DType::kBF16) {
      uint16_t h;
      std::memcpy(&h, t.data.data() + 2 * i, 2);
      out[i] = t.dtype == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
    } else {
      throw FormatError(fmt::format("{}: expected a float tensor (F32, F16 or BF16), got {}", where, DTypeName(t.dtype)));
    }
    if (!std::isfinite(out[i])) throw FormatError(fmt::format("{}: element {} is not finite ({})", where, i, out[i]));
  }
  return {out, static_cast<size_t>(n)};
}

RawTensor Require(const RawLookup& lookup, const std::string& name, const std::string& file) {
  auto t = lookup(name);
  if (!t) throw FormatError(fmt::format("{}: tensor '{}' is missing", file, name));
  return *t;
}

json ParseStateJson(const RawTensor& t, const std::string& where) {
  const json j = json::parse(t.data.begin(), t.data.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw FormatError(fmt::format("{}: quant state is not a JSON object", where));
  return j;
}

int64_t JsonInt(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw FormatError(fmt::format("{}: quant state key '{}' is missing", where, key));
  if (!j[key].is_number_integer())
    throw FormatError(fmt::format("{}: quant state key '{}' must be an integer, got {}", where, key, j[key].dump()));
  return j[key].get<int64_t>();
}

std::string JsonStr(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw FormatError(fmt::format("{}: quant state key '{}' is missing", where, key));
  if (!j[key].is_string())
    throw FormatError(fmt::format("{}: quant state key '{}' must be a string, got {}", where, key, j[key].dump()));
  return j[key].get<std::string>();
}

Shape JsonShape(const json& j, const std::string& where) {
  if (!j.contains("shape") || !j["shape"].is_array() || j["shape"].size() != 2)
    throw FormatError(fmt::format("{}: quant state key 'shape' must be [out, in], got {}", where,
                                  j.contains("shape") ? j["shape"].dump() : "nothing"));
  int64_t d[2];
  for (int i = 0; i < 2; ++i) {
    const json& v = j["shape"][i];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (int64_t{1} << 31))
      throw FormatError(fmt::format("{}: quant state 'shape' has a bad dimension {}", where, v.dump()));
    d[i] = v.get<int64_t>();
  }
  return Shape{d[0], d[1]};
}

DType JsonDtype(const json& j, const std::string& where) {
  const std::string s = JsonStr(j, "dtype", where);
  const auto dt = ParseTorchDtype(s);
  if (!dt) throw FormatError(fmt::format("{}: quant state 'dtype' must be float32, bfloat16 or float16, got \"{}\"", where, s));
  return *dt;
}

QTensor Read4bit(const RawLookup& lookup, const std::string& p, const std::string& file, const std::string& type,
                 const QuantizationConfig& config, Allocator& alloc) {
  const std::string state_name = p + std::string(kBnbStatePrefix) + type;
  const std::string where = fmt::format("{}: tensor '{}'", file, state_name);
  const json j = ParseStateJson(Require(lookup, state_name, file), where);
  QTensor q;
  if (type == "nf4") {
    q.method = QuantMethod::kNf4;
  } else if (type == "fp4") {
    q.method = QuantMethod::kFp4;
  } else {
    throw FormatError(fmt::format("{}: unknown 4-bit quant type '{}' (expected nf4 or fp4)", where, type));
  }
  if (JsonStr(j, "quant_type", where) != type)
    throw FormatError(fmt::format("{}: quant_type \"{}\" does not match the key suffix \"{}\"", where,
                                  j["quant_type"].get<std::string>(), type));
  q.format = quant::FindBlockwiseFormat(q.method);
  q.blocksize = JsonInt(j, "blocksize", where);
  if (!IsPowerOfTwo(q.blocksize) || q.blocksize < 32 || q.blocksize > 4096)
    throw FormatError(fmt::format("{}: blocksize must be a power of two in [32, 4096], got {}", where, q.blocksize));
  q.dtype = JsonDtype(j, where);
  q.shape = JsonShape(j, where);
  q.compute = config.bnb_4bit_compute_dtype;
  const int64_t n = q.NumElems();
  const RawTensor w = Require(lookup, p + ".weight", file);
  if (static_cast<int64_t>(w.data.size()) < (n + 1) / 2)
    throw FormatError(fmt::format("{}: tensor '{}.weight' holds {} bytes, shape {} needs {}", file, p, w.data.size(),
                                  q.shape.ToString(), (n + 1) / 2));
  q.codes = w.data.subspan(0, static_cast<size_t>((n + 1) / 2));  // reinterpreted, never converted (§2.5)
  if (!lookup(p + ".weight.quant_map"))
    throw FormatError(fmt::format("{}: tensor '{}.weight.quant_map' is missing (transformers needs it)", file, p));
  const RawTensor absmax = Require(lookup, p + ".weight.absmax", file);
  if (absmax.dtype == DType::kU8) {
    q.nested = true;
    q.scale_codes = absmax.data;
    q.nested_absmax = WidenedCopy(q, alloc, Require(lookup, p + ".weight.nested_absmax", file),
                                  fmt::format("{}: tensor '{}.weight.nested_absmax'", file, p));
    q.nested_map = WidenedCopy(q, alloc, Require(lookup, p + ".weight.nested_quant_map", file),
                               fmt::format("{}: tensor '{}.weight.nested_quant_map'", file, p));
    q.nested_blocksize = JsonInt(j, "nested_blocksize", where);
    if (!j.contains("nested_offset") || !j["nested_offset"].is_number())
      throw FormatError(fmt::format("{}: quant state key 'nested_offset' is missing or not a number", where));
    q.nested_offset = static_cast<float>(j["nested_offset"].get<double>());
    if (!std::isfinite(q.nested_offset)) throw FormatError(fmt::format("{}: nested_offset is not finite", where));
  } else {
    q.scales = WidenedCopy(q, alloc, absmax, fmt::format("{}: tensor '{}.weight.absmax'", file, p));
  }
  quant::ValidateQTensor(q, fmt::format("{}: quantized weight '{}'", file, p));
  return q;
}

QTensor Read8bit(const RawLookup& lookup, const std::string& p, const std::string& file,
                 const QuantizationConfig& config, Allocator& alloc) {
  QTensor q;
  q.method = QuantMethod::kLlmInt8;
  q.threshold = static_cast<float>(config.llm_int8_threshold);
  q.dtype = DType::kF16;
  if (auto wf = lookup(p + ".weight_format")) {
    if (wf->data.size() != 1 || (wf->dtype != DType::kU8 && wf->dtype != DType::kI8))
      throw FormatError(fmt::format("{}: tensor '{}.weight_format' must be a one-byte scalar, got {} of {} bytes", file,
                                    p, DTypeName(wf->dtype), wf->data.size()));
    const int fmt_id = wf->data[0];
    static const char* kNames[] = {"row", "col32", "col_turing", "col_ampere"};
    if (fmt_id != 0)
      throw FormatError(fmt::format(
          "{}: tensor '{}.weight_format' is {} ({}): a tiled GPU layout written by bitsandbytes <= 0.44 that nibble "
          "does not convert; re-save the model with bitsandbytes >= 0.45 (row-major, weight_format 0)",
          file, p, fmt_id, fmt_id < 4 ? kNames[fmt_id] : "unknown"));
  }
  const RawTensor w = Require(lookup, p + ".weight", file);
  if (w.dtype != DType::kI8 || w.shape.rank() != 2)
    throw FormatError(fmt::format("{}: tensor '{}.weight' of an 8-bit layer must be I8 [out, in], got {} {}", file, p,
                                  DTypeName(w.dtype), w.shape.ToString()));
  q.shape = w.shape;
  q.blocksize = q.cols();
  q.codes = w.data;
  // LLM.int8() codes lie in -127..127 (spec §5.1); the int8 kernels negate weight codes.
  for (size_t i = 0; i < q.codes.size(); ++i)
    if (q.codes[i] == 0x80)
      throw FormatError(fmt::format("{}: tensor '{}.weight': element {} is -128; LLM.int8() codes lie in -127..127",
                                    file, p, i));
  q.scales = WidenedCopy(q, alloc, Require(lookup, p + ".SCB", file), fmt::format("{}: tensor '{}.SCB'", file, p));
  quant::ValidateQTensor(q, fmt::format("{}: 8-bit weight '{}'", file, p));
  return q;
}

QTensor ReadNibble(const RawLookup& lookup, const std::string& p, const std::string& file,
                   const QuantizationConfig& config, Allocator& alloc) {
  const std::string state_name = p + std::string(kNibbleState);
  const std::string where = fmt::format("{}: tensor '{}'", file, state_name);
  const json j = ParseStateJson(Require(lookup, state_name, file), where);
  QTensor q;
  const std::string method = JsonStr(j, "method", where);
  const auto m = quant::ParseMethod(method);
  if (!m || *m == QuantMethod::kNf4 || *m == QuantMethod::kFp4 || *m == QuantMethod::kLlmInt8)
    throw FormatError(fmt::format("{}: method \"{}\" is not a nibble format (int4, int8-absmax, int8-zeropoint)",
                                  where, method));
  q.method = *m;
  q.format = quant::FindBlockwiseFormat(q.method);
  q.blocksize = JsonInt(j, "blocksize", where);
  q.dtype = JsonDtype(j, where);
  q.shape = JsonShape(j, where);
  q.compute = config.bnb_4bit_compute_dtype;
  if (q.blocksize <= 0 || q.blocksize > q.NumElems())
    throw FormatError(fmt::format("{}: blocksize {} is outside [1, {}]", where, q.blocksize, q.NumElems()));
  const RawTensor w = Require(lookup, p + ".weight", file);
  q.codes = w.data;
  q.scales = WidenedCopy(q, alloc, Require(lookup, p + ".weight.scales", file),
                         fmt::format("{}: tensor '{}.weight.scales'", file, p));
  if (q.format->has_zero_point)
    q.zeros = WidenedCopy(q, alloc, Require(lookup, p + ".weight.zeros", file),
                          fmt::format("{}: tensor '{}.weight.zeros'", file, p));
  quant::ValidateQTensor(q, fmt::format("{}: quantized weight '{}'", file, p));
  if (static_cast<int64_t>(q.codes.size()) != quant::CodeBytes(q.format->code_bits, q.NumElems()))
    throw FormatError(fmt::format("{}: tensor '{}.weight' holds {} bytes, expected {}", file, p, q.codes.size(),
                                  quant::CodeBytes(q.format->code_bits, q.NumElems())));
  return q;
}

}  // namespace

std::string PythonFloatRepr(float f) {
  const double d = f;
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string s(buf, r.ptr);  // "-1.75e+00": shortest round-trip digits
  const size_t e = s.find('e');
  const bool neg = s[0] == '-';
  std::string digits;
  for (size_t i = neg ? 1 : 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  const int exp = std::stoi(s.substr(e + 1));
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const auto int_len = static_cast<size_t>(exp + 1);
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  }
  return out;
}

std::string_view TorchDtypeName(DType t) {
  switch (t) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    default:
      return "float32";
  }
}

std::optional<DType> ParseTorchDtype(std::string_view name) {
  if (name == "float32") return DType::kF32;
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16") return DType::kF16;
  return std::nullopt;
}

std::string Bnb4bitQuantStateJson(const QTensor& q) {
  std::string s = fmt::format(R"({{"quant_type": "{}", "blocksize": {}, "dtype": "{}", "shape": {})",
                              q.method == QuantMethod::kNf4 ? "nf4" : "fp4", q.blocksize, TorchDtypeName(q.dtype),
                              ShapeJson(q.shape));
  if (q.nested)
    s += fmt::format(R"(, "nested_blocksize": {}, "nested_dtype": "float32", "nested_offset": {})", q.nested_blocksize,
                     PythonFloatRepr(q.nested_offset));
  return s + "}";
}

nlohmann::json QuantizationConfigToJson(const QuantizationConfig& c) {
  json j;
  if (c.kind == QuantizationConfig::Kind::kNibble) {
    j["quant_method"] = "nibble";
    j["method"] = c.nibble_method;
    j["blocksize"] = c.nibble_blocksize;
    j["compute_dtype"] = std::string(ComputeDtypeName(c.bnb_4bit_compute_dtype));
    j["skip_modules"] = c.llm_int8_skip_modules ? json(*c.llm_int8_skip_modules) : json(nullptr);
    return j;
  }
  const bool four = c.kind == QuantizationConfig::Kind::kBnb4bit;
  j["_load_in_4bit"] = four;
  j["_load_in_8bit"] = !four;
  j["load_in_4bit"] = four;
  j["load_in_8bit"] = !four;
  j["bnb_4bit_compute_dtype"] = std::string(ComputeDtypeName(c.bnb_4bit_compute_dtype));
  j["bnb_4bit_quant_storage"] = c.bnb_4bit_quant_storage;
  j["bnb_4bit_quant_type"] = c.bnb_4bit_quant_type;
  j["bnb_4bit_use_double_quant"] = c.bnb_4bit_use_double_quant;
  j["llm_int8_enable_fp32_cpu_offload"] = c.llm_int8_enable_fp32_cpu_offload;
  j["llm_int8_has_fp16_weight"] = c.llm_int8_has_fp16_weight;
  j["llm_int8_skip_modules"] = c.llm_int8_skip_modules ? json(*c.llm_int8_skip_modules) : json(nullptr);
  j["llm_int8_threshold"] = c.llm_int8_threshold;  // a double: dumps as 6.0 (transformers needs a float)
  j["quant_method"] = "bitsandbytes";
  return j;
}

QuantizationConfig ParseQuantizationConfig(const nlohmann::json& j, std::string_view where) {
  auto bad = [&](const std::string& key, const std::string& what) {
    throw ConfigError(fmt::format("{}: quantization_config.{}: {}", where, key, what));
  };
  if (!j.is_object()) throw ConfigError(fmt::format("{}: quantization_config must be an object", where));
  QuantizationConfig c;
  const std::string method = j.contains("quant_method") && j["quant_method"].is_string()
                                 ? j["quant_method"].get<std::string>()
                                 : std::string("(missing)");
  auto get_bool = [&](const char* key, bool fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_boolean()) bad(key, fmt::format("expected true or false, got {}", j[key].dump()));
    return j[key].get<bool>();
  };
  auto get_str = [&](const char* key, const std::string& fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_string()) bad(key, fmt::format("expected a string, got {}", j[key].dump()));
    return j[key].get<std::string>();
  };
  auto compute = [&](const char* key) {
    const std::string s = get_str(key, "float32");
    if (s == "float32") return quant::ComputeDtype::kF32;
    if (s == "bfloat16") return quant::ComputeDtype::kBf16;
    if (s == "float16") return quant::ComputeDtype::kF16;
    bad(key, fmt::format("expected float32, bfloat16 or float16, got \"{}\"", s));
    return quant::ComputeDtype::kF32;
  };
  auto skip = [&](const char* key) -> std::optional<std::vector<std::string>> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (!j[key].is_array()) bad(key, fmt::format("expected a list of strings or null, got {}", j[key].dump()));
    std::vector<std::string> v;
    for (const json& e : j[key]) {
      if (!e.is_string()) bad(key, fmt::format("expected strings, got {}", e.dump()));
      v.push_back(e.get<std::string>());
    }
    return v;
  };
  if (method == "nibble") {
    c.kind = QuantizationConfig::Kind::kNibble;
    c.nibble_method = get_str("method", "");
    if (!quant::ParseMethod(c.nibble_method)) bad("method", fmt::format("unknown method \"{}\"", c.nibble_method));
    if (!j.contains("blocksize") || !j["blocksize"].is_number_integer())
      bad("blocksize", "missing or not an integer");
    c.nibble_blocksize = j["blocksize"].get<int64_t>();
    c.bnb_4bit_compute_dtype = compute("compute_dtype");
    c.llm_int8_skip_modules = skip("skip_modules");
    for (const auto& [key, value] : j.items())
      if (key != "quant_method" && key != "method" && key != "blocksize" && key != "compute_dtype" &&
          key != "skip_modules")
        bad(key, "unknown key in a nibble quantization_config");
    return c;
  }
  if (method != "bitsandbytes")
    bad("quant_method", fmt::format("\"{}\" is not supported (nibble reads \"bitsandbytes\" and \"nibble\")", method));
  const bool four = get_bool("load_in_4bit", get_bool("_load_in_4bit", false));
  const bool eight = get_bool("load_in_8bit", get_bool("_load_in_8bit", false));
  if (four == eight) bad("load_in_4bit", four ? "load_in_4bit and load_in_8bit are both true" : "neither load_in_4bit nor load_in_8bit is true");
  c.kind = four ? QuantizationConfig::Kind::kBnb4bit : QuantizationConfig::Kind::kBnb8bit;
  c.bnb_4bit_quant_type = get_str("bnb_4bit_quant_type", "fp4");
  if (c.bnb_4bit_quant_type != "nf4" && c.bnb_4bit_quant_type != "fp4")
    bad("bnb_4bit_quant_type", fmt::format("expected nf4 or fp4, got \"{}\"", c.bnb_4bit_quant_type));
  c.bnb_4bit_use_double_quant = get_bool("bnb_4bit_use_double_quant", false);
  c.bnb_4bit_compute_dtype = compute("bnb_4bit_compute_dtype");
  c.bnb_4bit_quant_storage = get_str("bnb_4bit_quant_storage", "uint8");
  if (j.contains("llm_int8_threshold") && !j["llm_int8_threshold"].is_null()) {
    if (!j["llm_int8_threshold"].is_number_float())
      bad("llm_int8_threshold", fmt::format("expected a float such as 6.0, got {}", j["llm_int8_threshold"].dump()));
    c.llm_int8_threshold = j["llm_int8_threshold"].get<double>();
  }
  c.llm_int8_skip_modules = skip("llm_int8_skip_modules");
  c.llm_int8_has_fp16_weight = get_bool("llm_int8_has_fp16_weight", false);
  c.llm_int8_enable_fp32_cpu_offload = get_bool("llm_int8_enable_fp32_cpu_offload", false);
  return c;
}

void AppendQuantizedTensors(const std::string& p, const QTensor& q, std::vector<SafetensorsWriteTensor>& out,
                            std::vector<std::vector<uint8_t>>& strings) {
  const int64_t n = q.NumElems();
  auto add = [&](const std::string& name, DType dt, const Shape& shape, std::span<const uint8_t> data) {
    out.push_back(SafetensorsWriteTensor{name, dt, shape, data});
  };
  auto floats = [](std::span<const float> v) { return Bytes(v.data(), v.size() * sizeof(float)); };
  auto keep = [&](const std::string& text) -> std::span<const uint8_t> {
    strings.emplace_back(text.begin(), text.end());
    return strings.back();
  };
  // Spans point at the heap buffers of `strings`' elements, which stay put when `strings`
  // itself grows (moving a std::vector keeps its buffer).
  if (q.method == QuantMethod::kLlmInt8) {
    add(p + ".weight", DType::kI8, q.shape, q.codes);
    add(p + ".SCB", DType::kF32, Shape{q.rows()}, floats(q.scales));
    static const uint8_t kRowMajor = 0;
    add(p + ".weight_format", DType::kU8, Shape{}, Bytes(&kRowMajor, 1));
    return;
  }
  const int64_t nb = q.NumBlocks();
  if (q.method == QuantMethod::kNf4 || q.method == QuantMethod::kFp4) {
    add(p + ".weight", DType::kU8, Shape{(n + 1) / 2, 1}, q.codes);
    if (q.nested) {
      add(p + ".weight.absmax", DType::kU8, Shape{nb}, q.scale_codes);
      add(p + ".weight.nested_absmax", DType::kF32, Shape{static_cast<int64_t>(q.nested_absmax.size())},
          floats(q.nested_absmax));
      add(p + ".weight.nested_quant_map", DType::kF32, Shape{256}, floats(q.nested_map));
    } else {
      add(p + ".weight.absmax", DType::kF32, Shape{nb}, floats(q.scales));
    }
    const float* map = q.method == QuantMethod::kNf4 ? quant::nf4::kLut : quant::fp4::kQuantMap;
    add(p + ".weight.quant_map", DType::kF32, Shape{16}, Bytes(map, 16 * sizeof(float)));
    const auto json_bytes = keep(Bnb4bitQuantStateJson(q));
    add(p + std::string(kBnbStatePrefix) + (q.method == QuantMethod::kNf4 ? "nf4" : "fp4"), DType::kU8,
        Shape{static_cast<int64_t>(json_bytes.size())}, json_bytes);
    return;
  }
  const bool four = q.format->code_bits == 4;
  add(p + ".weight", four ? DType::kU8 : DType::kI8, four ? Shape{(n + 1) / 2, 1} : q.shape, q.codes);
  add(p + ".weight.scales", DType::kF32, Shape{nb}, floats(q.scales));
  if (q.format->has_zero_point) add(p + ".weight.zeros", DType::kF32, Shape{nb}, floats(q.zeros));
  const auto json_bytes =
      keep(fmt::format(R"({{"method": "{}", "blocksize": {}, "dtype": "{}", "shape": {}}})", quant::MethodName(q.method),
                       q.blocksize, TorchDtypeName(q.dtype), ShapeJson(q.shape)));
  add(p + std::string(kNibbleState), DType::kU8, Shape{static_cast<int64_t>(json_bytes.size())}, json_bytes);
}

bool SkippedModule(std::string_view module, const std::vector<std::string>& skip) {
  for (const std::string& p : skip) {
    if (module == p) return true;
    if (module.size() > p.size() && module.ends_with(p) && module[module.size() - p.size() - 1] == '.') return true;
    if (module.size() > p.size() && module.starts_with(p) && module[p.size()] == '.') return true;
  }
  return false;
}

bool IsQuantizedLinear(const RawLookup& lookup, const std::string& p) {
  return lookup(p + std::string(kBnbStatePrefix) + "nf4") || lookup(p + std::string(kBnbStatePrefix) + "fp4") ||
         lookup(p + ".SCB") || lookup(p + std::string(kNibbleState));
}

quant::QTensor ReadQuantizedLinear(const RawLookup& lookup, const std::string& p, const std::string& file,
                                   const QuantizationConfig& config, Allocator& alloc) {
  const bool nf4 = lookup(p + std::string(kBnbStatePrefix) + "nf4").has_value();
  const bool fp4 = lookup(p + std::string(kBnbStatePrefix) + "fp4").has_value();
  if (nf4 && fp4)
    throw FormatError(fmt::format("{}: '{}' has both an nf4 and an fp4 quant state (exactly one expected)", file, p));
  if (nf4 || fp4) return Read4bit(lookup, p, file, nf4 ? "nf4" : "fp4", config, alloc);
  if (lookup(p + ".SCB")) return Read8bit(lookup, p, file, config, alloc);
  if (lookup(p + std::string(kNibbleState))) return ReadNibble(lookup, p, file, config, alloc);
  throw FormatError(fmt::format("{}: '{}' is not a quantized Linear (no quant state, no SCB)", file, p));
}

}  // namespace nibble::io
