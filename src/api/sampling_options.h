// The sampler settings GenerateOptions and ChatOptions share (same field names), turned
// into a model::SamplerConfig in one place; an absent seed becomes a random one.
#pragma once

#include <cstdint>
#include <random>

#include "model/sampler.h"

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

}  // namespace nibble::api
