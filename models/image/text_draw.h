// Text on an RgbImage with our own 5×7 bitmap font (printable ASCII 32..126), for overlays and
// plots that must be readable without any font library. One glyph cell is 6×9 pixels × scale.
#pragma once
#include <string>

#include "models/image/overlay.h"

namespace sm {

constexpr int kGlyphWidth = 5;   // drawn pixels per glyph row
constexpr int kGlyphHeight = 7;  // drawn rows per glyph
constexpr int kGlyphAdvance = 6; // horizontal step from one character to the next
constexpr int kLineAdvance = 9;  // vertical step from one line to the next ('\n' starts a line)

// Draws `text` with its top-left corner at (x, y); each font pixel becomes a scale×scale block.
// background: a dark translucent box one font pixel wider than the text on every side, so that
// the text stays readable on any film. Characters outside 32..126 are drawn as '?'. Parts that
// fall outside the canvas are clipped. Requires scale >= 1.
void overlay_text_draw(RgbImage& canvas, int x, int y, const std::string& text, Rgb colour, int scale = 1,
                       bool background = true);
// Width and height in pixels of the text as drawn (longest line; no background margin).
int overlay_text_width(const std::string& text, int scale);
int overlay_text_height(const std::string& text, int scale);

}  // namespace sm
