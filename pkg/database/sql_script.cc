#include "pkg/database/sql_script.h"

#include <algorithm>
#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace eph::database {
namespace {

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

bool IsIdentChar(char c) {
  return absl::ascii_isalnum(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool IsIdentStart(char c) {
  return absl::ascii_isalpha(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

// Walks the script keeping the current line number.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool done() const { return i_ >= s_.size(); }
  char peek(size_t ahead = 0) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }
  size_t pos() const { return i_; }
  int line() const { return line_; }
  void Advance(size_t n = 1) {
    for (size_t k = 0; k < n && i_ < s_.size(); ++k, ++i_) {
      if (s_[i_] == '\n') ++line_;
    }
  }
  std::string_view Rest() const { return s_.substr(i_); }

  // Skips a comment starting here; false when none starts here. InvalidArgument when unclosed.
  absl::StatusOr<bool> SkipComment() {
    if (peek() == '-' && peek(1) == '-') {
      while (!done() && peek() != '\n') Advance();
      return true;
    }
    if (peek() == '/' && peek(1) == '*') {
      const int start_line = line_;
      int depth = 0;
      while (!done()) {
        if (peek() == '/' && peek(1) == '*') {
          ++depth;
          Advance(2);
        } else if (peek() == '*' && peek(1) == '/') {
          Advance(2);
          if (--depth == 0) return true;
        } else {
          Advance();
        }
      }
      return absl::InvalidArgumentError(
          absl::StrCat("line ", start_line, ": the comment opened here is never closed"));
    }
    return false;
  }

  // Skips a quoted string, identifier or dollar-quoted body starting here; false when none does.
  absl::StatusOr<bool> SkipQuoted() {
    const char c = peek();
    const int start_line = line_;
    auto unclosed = [&](std::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", start_line, ": the ", S(what), " opened here is never closed"));
    };
    if (c == '\'') {
      const bool escapes = i_ > 0 && (s_[i_ - 1] == 'E' || s_[i_ - 1] == 'e') &&
                           (i_ < 2 || !IsIdentChar(s_[i_ - 2]));
      Advance();
      while (!done()) {
        if (escapes && peek() == '\\') {
          Advance(2);
        } else if (peek() == '\'') {
          if (peek(1) == '\'') {
            Advance(2);
          } else {
            Advance();
            return true;
          }
        } else {
          Advance();
        }
      }
      return unclosed("string");
    }
    if (c == '"') {
      Advance();
      while (!done()) {
        if (peek() == '"') {
          if (peek(1) == '"') {
            Advance(2);
          } else {
            Advance();
            return true;
          }
        } else {
          Advance();
        }
      }
      return unclosed("quoted identifier");
    }
    if (c == '$' && !(i_ > 0 && IsIdentChar(s_[i_ - 1]))) {
      size_t j = i_ + 1;
      if (j < s_.size() && IsIdentStart(s_[j])) {
        while (j < s_.size() && IsIdentChar(s_[j])) ++j;
      }
      if (j < s_.size() && s_[j] == '$') {
        const std::string_view tag = s_.substr(i_, j - i_ + 1);
        const size_t close = s_.find(tag, j + 1);
        if (close == std::string_view::npos) return unclosed("dollar-quoted string");
        Advance(close + tag.size() - i_);
        return true;
      }
    }
    return false;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
  int line_ = 1;
};

// The words of a statement outside quotes and comments, uppercased; at most `limit`.
std::vector<std::string> Words(std::string_view text, size_t limit) {
  std::vector<std::string> words;
  Scanner sc(text);
  while (!sc.done() && words.size() < limit) {
    absl::StatusOr<bool> skipped = sc.SkipComment();
    if (!skipped.ok()) break;
    if (*skipped) continue;
    skipped = sc.SkipQuoted();
    if (!skipped.ok()) break;
    if (*skipped) continue;
    if (IsIdentStart(sc.peek())) {
      std::string word;
      while (!sc.done() && IsIdentChar(sc.peek())) {
        word.push_back(absl::ascii_toupper(sc.peek()));
        sc.Advance();
      }
      words.push_back(std::move(word));
    } else {
      sc.Advance();
    }
  }
  return words;
}

bool IsCopyFromStdin(std::string_view text) {
  const std::vector<std::string> words = Words(text, 64);
  if (words.empty() || words[0] != "COPY") return false;
  for (size_t k = 1; k + 1 < words.size(); ++k) {
    if (words[k] == "FROM" && words[k + 1] == "STDIN") return true;
  }
  return false;
}

// Skips what may stand between statements: whitespace, comments, empty statements and pg_dump's
// `\restrict` lines. InvalidArgument for any other psql meta-command.
absl::Status SkipBetweenStatements(Scanner& sc) {
  while (!sc.done()) {
    if (absl::ascii_isspace(sc.peek())) {
      sc.Advance();
      continue;
    }
    absl::StatusOr<bool> comment = sc.SkipComment();
    if (!comment.ok()) return comment.status();
    if (*comment) continue;
    if (sc.peek() == '\\') {
      std::string_view rest = sc.Rest();
      rest = rest.substr(0, rest.find('\n'));
      if (absl::StartsWith(S(rest), "\\restrict") || absl::StartsWith(S(rest), "\\unrestrict")) {
        sc.Advance(rest.size());
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("line ", sc.line(), ": psql meta-command `", S(rest.substr(0, 40)),
                       "` is not SQL; seed scripts may only contain SQL statements"));
    }
    if (sc.peek() != ';') break;  // a statement starts here
    sc.Advance();                 // an empty statement
  }
  return absl::OkStatus();
}

// The statement starting here, up to its `;` (consumed) or the end of the script.
absl::StatusOr<SqlStatement> ScanStatement(Scanner& sc, std::string_view script) {
  const size_t start = sc.pos();
  SqlStatement statement;
  statement.line = sc.line();
  int depth = 0;
  bool terminated = false;
  while (!sc.done()) {
    absl::StatusOr<bool> skipped = sc.SkipComment();
    if (!skipped.ok()) return skipped.status();
    if (*skipped) continue;
    skipped = sc.SkipQuoted();
    if (!skipped.ok()) return skipped.status();
    if (*skipped) continue;
    const char c = sc.peek();
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (depth > 0) --depth;
    } else if (c == ';' && depth == 0) {
      terminated = true;
      break;
    }
    sc.Advance();
  }
  statement.text =
      std::string(absl::StripTrailingAsciiWhitespace(S(script.substr(start, sc.pos() - start))));
  if (terminated) sc.Advance();  // the ';'
  return statement;
}

// The data of the COPY ... FROM STDIN of `copy_line`: from the line after the statement up to a
// line holding only `\.` (consumed, not part of the data).
absl::StatusOr<std::string> ReadCopyData(Scanner& sc, int copy_line) {
  while (!sc.done() && sc.peek() != '\n') sc.Advance();
  sc.Advance();
  std::string data;
  while (!sc.done()) {
    std::string_view rest = sc.Rest();
    const size_t eol = rest.find('\n');
    std::string_view row = rest.substr(0, eol);
    const size_t consumed = eol == std::string_view::npos ? rest.size() : eol + 1;
    if (absl::EndsWith(S(row), "\r")) row.remove_suffix(1);
    sc.Advance(consumed);
    if (row == "\\.") return data;
    absl::StrAppend(&data, S(row), "\n");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "line ", copy_line, ": the data of this COPY ... FROM STDIN never ends with `\\.`"));
}

}  // namespace

absl::StatusOr<std::vector<SqlStatement>> SplitSqlScript(std::string_view script) {
  std::vector<SqlStatement> out;
  Scanner sc(script);
  while (true) {
    if (absl::Status st = SkipBetweenStatements(sc); !st.ok()) return st;
    if (sc.done()) break;
    absl::StatusOr<SqlStatement> statement = ScanStatement(sc, script);
    if (!statement.ok()) return statement.status();
    if (IsCopyFromStdin(statement->text)) {
      absl::StatusOr<std::string> data = ReadCopyData(sc, statement->line);
      if (!data.ok()) return data.status();
      statement->copy_data = *std::move(data);
    }
    out.push_back(*std::move(statement));
  }
  return out;
}

bool NeedsOwnTransaction(const SqlStatement& statement) {
  const std::vector<std::string> w = Words(statement.text, 6);
  if (w.empty()) return false;
  auto has = [&](std::string_view word) { return std::find(w.begin(), w.end(), word) != w.end(); };
  const std::string& first = w[0];
  const std::string second = w.size() > 1 ? w[1] : "";
  if (first == "BEGIN" || first == "START" || first == "COMMIT" || first == "END" ||
      first == "ROLLBACK" || first == "ABORT" || first == "VACUUM") {
    return true;
  }
  if (first == "PREPARE" && second == "TRANSACTION") return true;
  if (first == "ALTER" && second == "SYSTEM") return true;
  if ((first == "CREATE" || first == "DROP") &&
      (second == "DATABASE" || second == "TABLESPACE" || second == "SUBSCRIPTION")) {
    return true;
  }
  if ((first == "CREATE" || first == "DROP" || first == "REINDEX") && has("CONCURRENTLY")) {
    return true;
  }
  return false;
}

int LineOfPosition(const SqlStatement& statement, int position) {
  if (position < 1) return statement.line;
  const std::string& t = statement.text;
  int chars = 0;
  int line = statement.line;
  for (size_t i = 0; i < t.size(); ++i) {
    // Count a character at each byte that does not continue a UTF-8 sequence.
    if ((static_cast<unsigned char>(t[i]) & 0xC0) != 0x80) {
      if (++chars == position) return line;
    }
    if (t[i] == '\n') ++line;
  }
  return statement.line;
}

}  // namespace eph::database
