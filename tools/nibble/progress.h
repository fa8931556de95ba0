// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace nibble::cli {

class ProgressBar {
 public:
  // `label` precedes the bar; `enabled` false makes every call a no-op; `unit` names
  // what Update counts: "B" shows a byte rate (KiB/s, MiB/s), anything else "N unit/s".
  ProgressBar(std::string label, bool enabled, std::string unit = "B");
  ~ProgressBar();
  void Update(uint64_t done, uint64_t total, std::string_view item);
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  std::string unit_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// True when stderr is an interactive terminal.
bool StderrIsTty();

// "1.13 MiB", "512 B"
std::string HumanBytes(uint64_t n);
// "292,800"
std::string Thousands(uint64_t n);

}  // namespace nibble::cli
