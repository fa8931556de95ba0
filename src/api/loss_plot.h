// The loss curve of a fine-tuning run as a self-contained SVG (no library): training loss
// per logged step and validation loss per evaluation against the optimizer step, with
// labelled axes, ticks and a legend, so a person can open OUT/loss.svg in a browser.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nibble::api {

struct LossPoint {
  double step = 0, loss = 0;
};

// Non-finite points are left out; empty series are left out of the legend.
std::string LossCurveSvg(const std::vector<LossPoint>& train, const std::vector<LossPoint>& eval,
                         std::string_view title);

}  // namespace nibble::api
