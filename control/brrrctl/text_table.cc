#include "control/brrrctl/text_table.h"

#include <algorithm>
#include <utility>

namespace brrr::control {

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

TextTable& TextTable::AlignRight(size_t column) {
  if (right_aligned_.size() <= column) right_aligned_.resize(column + 1, false);
  right_aligned_[column] = true;
  return *this;
}

void TextTable::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string TextTable::Render() const {
  std::vector<const std::vector<std::string>*> lines;
  if (!header_.empty()) lines.push_back(&header_);
  for (const auto& row : rows_) lines.push_back(&row);

  std::vector<size_t> widths;
  for (const auto* line : lines) {
    if (widths.size() < line->size()) widths.resize(line->size(), 0);
    for (size_t c = 0; c < line->size(); ++c) widths[c] = std::max(widths[c], (*line)[c].size());
  }
  std::string out;
  for (const auto* line : lines) {
    std::string text;
    for (size_t c = 0; c < widths.size(); ++c) {
      const std::string empty;
      const std::string& cell = c < line->size() ? (*line)[c] : empty;
      std::string padding(widths[c] - cell.size(), ' ');
      if (c > 0) text += "  ";
      bool right = c < right_aligned_.size() && right_aligned_[c];
      text += right ? padding + cell : cell + padding;
    }
    text.erase(text.find_last_not_of(' ') + 1);
    out += text;
    out += '\n';
  }
  return out;
}

}  // namespace brrr::control
