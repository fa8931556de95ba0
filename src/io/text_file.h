// Reading the small inputs users point nibble at (prompts, corpora, config and
// tokenizer JSON, chat templates): regular files only, never more than a stated limit,
// and every error names the file and what was wrong. A FIFO, a device (/dev/zero) or a
// directory is refused up front instead of blocking or growing without bound.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nibble/input.h"

namespace nibble::io {

// The limits are the public ones (nibble/input.h).
using nibble::kMaxConfigFileBytes;
using nibble::kMaxPromptFileBytes;
using nibble::kMaxTextFileBytes;

// The whole file. `what` says what it is for ("prompt file (-f)"). IoError for a
// missing or unreadable path (with the system's reason: "too many levels of symbolic
// links", ...), a directory, anything but a regular file, or more than `max_bytes`.
std::string ReadRegularFile(const std::string& path, std::string_view what, uint64_t max_bytes);

// Throws IoError unless `path` is a regular file or (when `allow_dir`) a directory,
// naming the path and what it is instead. Never opens it, so a FIFO cannot block.
void CheckPathKind(const std::string& path, std::string_view what, bool allow_dir);

// A JSON object from `path` (read with ReadRegularFile). FormatError names the file and
// the byte where parsing stopped, or what the top level was instead of an object.
nlohmann::json ReadJsonObject(const std::string& path, std::string_view what);

// The parsing half of ReadJsonObject (`path` and `what` only name the text in errors).
nlohmann::json ParseJsonObject(std::string_view text, const std::string& path, std::string_view what);

// As ReadJsonObject, but std::nullopt when `path` does not exist.
std::optional<nlohmann::json> ReadJsonObjectIfExists(const std::string& path, std::string_view what);

}  // namespace nibble::io
