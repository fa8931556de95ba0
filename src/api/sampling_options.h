// The sampler settings GenerateOptions and ChatOptions share (same field names), turned
// into a model::SamplerConfig in one place (an absent seed becomes a random one), and the
// run options both check before loading.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <random>
#include <string_view>

#include "model/sampler.h"
#include "nibble/error.h"

namespace nibble::api {

// `o` is GenerateOptions or ChatOptions. Returns the config; its seed is o.seed or a
// fresh 64-bit random one (the caller reports it).
template <class Options>
model::SamplerConfig SamplerConfigFrom(const Options& o) {
  model::SamplerConfig sc;
  sc.temperature = o.temperature;
  sc.top_k = o.top_k;
  sc.top_p = o.top_p;
  sc.min_p = o.min_p;
  sc.repeat_penalty = o.repeat_penalty;
  sc.repeat_last_n = o.repeat_last_n;
  sc.seed = o.seed ? *o.seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  return sc;
}

// The run options GenerateOptions and ChatOptions share, checked before any model is
// loaded: ctx_size >= 0, n_predict >= -1 and the sampler settings (model::Sampler
// validates them). ConfigError naming the option, prefixed by `command` ("generate",
// "chat"). Returns SamplerConfigFrom(o).
template <class Options>
model::SamplerConfig CheckRunOptions(const Options& o, std::string_view command) {
  if (o.ctx_size < 0) throw ConfigError(fmt::format("{}: option 'ctx' (-c) must be >= 0, got {}", command, o.ctx_size));
  if (o.n_predict < -1)
    throw ConfigError(fmt::format(
        "{}: option 'n-predict' (-n) must be -1 (until EOS or the context is full) or >= 0, got {}", command,
        o.n_predict));
  const model::SamplerConfig sc = SamplerConfigFrom(o);
  model::Sampler check(sc);
  return sc;
}

}  // namespace nibble::api
