// The evaluation report as ONE self-contained HTML page: inline CSS, inline SVG plots, overlays
// embedded as data:image/png;base64, a tiny inline script and no external reference at all.
#pragma once
#include <string>

#include "train/eval/eval.h"

namespace sm {

// The whole page for a finished evaluation (eval_compute done). Overlays are drawn from the
// images at EvalImage::image_path; an unreadable one is replaced by a note, not an error.
std::string report_html_build(const EvalResult& result, const std::string& title);

// Text made safe inside HTML/SVG element content and double-quoted attribute values.
std::string html_escape(const std::string& text);
// Standard base64 (RFC 4648, with '=' padding), for data: URLs.
std::string base64_encode(const std::string& bytes);

}  // namespace sm
