// LossCurveSvg: a 720×420 plot with "nice" ticks on both axes.
#include "api/loss_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nibble::api {
namespace {

// Tick spacing of 1, 2 or 5 × 10^k giving about `n` intervals over [lo, hi].
double NiceStep(double lo, double hi, int n) {
  const double raw = std::max(hi - lo, 1e-12) / n;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

std::string Escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

}  // namespace

std::string LossCurveSvg(const std::vector<LossPoint>& train, const std::vector<LossPoint>& eval,
                         std::string_view title) {
  constexpr double W = 720, H = 420, L = 70, R = 20, T = 40, B = 60;
  double x0 = 0, x1 = 1, y0 = INFINITY, y1 = -INFINITY;
  for (const auto* s : {&train, &eval})
    for (const LossPoint& p : *s)
      if (std::isfinite(p.loss) && std::isfinite(p.step)) {
        x1 = std::max(x1, p.step);
        y0 = std::min(y0, p.loss);
        y1 = std::max(y1, p.loss);
      }
  if (!(y0 <= y1)) y0 = 0, y1 = 1;
  const double ystep = NiceStep(y0, y1, 5);
  y0 = std::floor(y0 / ystep) * ystep;
  y1 = std::max(std::ceil(y1 / ystep) * ystep, y0 + ystep);
  const double xstep = NiceStep(x0, x1, 6);
  x1 = std::ceil(x1 / xstep) * xstep;
  auto X = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };

  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{3}</text>\n",
      W, H, W / 2, Escape(title));
  for (double v = y0; v <= y1 + ystep / 2; v += ystep)
    s += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/><text x=\"{3}\" "
                     "y=\"{4:.1f}\" text-anchor=\"end\">{5:.4g}</text>\n",
                     L, W - R, Y(v), L - 6, Y(v) + 4, v);
  for (double v = x0; v <= x1 + xstep / 2; v += xstep)
    s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0:.1f}\" "
                     "y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                     X(v), T, H - B, H - B + 18, v);
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", L, T,
                   W - L - R, H - T - B);
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">optimizer step</text>\n", (L + W - R) / 2, H - 18);
  s += fmt::format("<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0})\">"
                   "cross-entropy loss (nats/token)</text>\n",
                   (T + H - B) / 2);
  int legend = 0;
  auto series = [&](const std::vector<LossPoint>& pts, const char* color, const char* name, bool dots) {
    std::string path;
    for (const LossPoint& p : pts) {
      if (!std::isfinite(p.loss) || !std::isfinite(p.step)) continue;
      path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "" : " ", X(p.step), Y(p.loss));
      if (dots) s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", X(p.step), Y(p.loss), color);
    }
    if (path.empty()) return;
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", color, path);
    const double ly = T + 16 + 18 * legend++;
    s += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"/><text x=\"{4}\" "
                     "y=\"{5}\">{6}</text>\n",
                     W - R - 150, W - R - 126, ly, color, W - R - 120, ly + 4, name);
  };
  series(train, "#1f77b4", "training loss", false);
  series(eval, "#d62728", "validation loss", true);
  s += "</svg>\n";
  return s;
}

}  // namespace nibble::api
