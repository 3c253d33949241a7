// text_table.h: rows of text in aligned columns, for brrrctl's human-readable output.
//
//   TextTable table({"FD", "PEER", "BYTES_IN"});
//   table.AlignRight(0).AlignRight(2);
//   table.AddRow({"7", "127.0.0.1:40112", "100000"});
//   std::fputs(table.Render().c_str(), stdout);
//   // FD  PEER             BYTES_IN
//   //  7  127.0.0.1:40112    100000
//
// Columns are separated by two spaces; lines carry no trailing spaces. A table made with no
// header prints its rows only (key/value listings).
//
// Threads: an ordinary value; one thread at a time.
#ifndef BRRR_CONTROL_TEXT_TABLE_H_
#define BRRR_CONTROL_TEXT_TABLE_H_

#include <cstddef>
#include <string>
#include <vector>

namespace brrr::control {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header = {});

  // Right-aligns a column (numbers). Columns are left-aligned otherwise.
  TextTable& AlignRight(size_t column);
  // A row; missing cells are empty, extra cells make new columns.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // The header (if any) and the rows, each line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_aligned_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_TEXT_TABLE_H_
