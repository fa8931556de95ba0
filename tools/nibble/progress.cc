// Progress bar and number formatting for the CLI.
#include "progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace nibble::cli {

bool StderrIsTty() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, bool enabled, std::string unit)
    : label_(std::move(label)),
      enabled_(enabled),
      unit_(std::move(unit)),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done, uint64_t total, std::string_view item) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most 10 times a second, and always at the end.
  if (done < total && drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  constexpr int kWidth = 30;
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int fill = static_cast<int>(frac * kWidth);
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  std::string bar(static_cast<size_t>(fill), '#');
  bar.resize(kWidth, '.');
  std::string name(item.substr(0, 40));
  const std::string rate_text =
      unit_ == "B" ? HumanBytes(static_cast<uint64_t>(rate)) : fmt::format("{:.1f} {}", rate, unit_);
  fmt::print(stderr, "\r{} [{}] {:5.1f}% {:>12}/s  {:<40}", label_, bar, frac * 100.0, rate_text, name);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (enabled_ && drawn_) {
    fmt::print(stderr, "\n");
    drawn_ = false;
  }
}

std::string HumanBytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

std::string Thousands(uint64_t n) {
  std::string s = fmt::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

}  // namespace nibble::cli
