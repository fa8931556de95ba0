// A fine-tuning run's directory (OUT): the checkpoint-N directories, the staging of the
// final files, what OUT may hold when a run starts, resumes or starts over.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nibble/finetune.h"

namespace nibble::api {

inline constexpr std::string_view kStage = ".nibble-final";  // the final files before they move into OUT

// N of "checkpoint-N", else nullopt.
std::optional<int64_t> CheckpointNumber(const std::string& name);

// checkpoint-N directories of `out`, oldest first.
std::vector<std::pair<int64_t, std::filesystem::path>> Checkpoints(const std::string& out);

// Moves the committed staging directory's files into OUT, one rename each (each file is
// complete at every instant), then removes the staging directory.
void MoveStagedFiles(const std::string& out);

// OUT as a run directory: created when absent; otherwise only nibble's entries (checkpoints,
// the final files, its temporaries) are accepted, and only when resuming or overwriting.
// Returns true when it created OUT.
bool PrepareRunDir(const FinetuneOptions& o, bool resuming, const std::vector<std::string>& inputs,
                   std::vector<std::string>* notes);

// The checkpoint --resume-from-checkpoint names ("latest": the newest in out_dir with a
// trainer_state.json); empty when not resuming. ConfigError when there is none.
std::string FindCheckpoint(const FinetuneOptions& o);

}  // namespace nibble::api
