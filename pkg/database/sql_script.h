// SQL script splitting for seed scripts: cuts a file into the statements PostgreSQL runs one at a
// time, remembering where each starts so an error can name the line. Follows psql's rules for
// what ends a statement: a `;` outside quotes ('...', E'...', "...", $tag$...$tag$), comments
// (--, nested /* */) and parentheses. `COPY ... FROM STDIN` takes the lines after it up to `\.`
// as its data, as in pg_dump's plain output. Other psql meta-commands (`\connect`, `\i`) are not
// SQL and are reported as errors; pg_dump's `\restrict`/`\unrestrict` lines are skipped.
//
// Not handled: SQL-standard function bodies (`BEGIN ATOMIC ... END`) whose inner statements end
// in `;` outside parentheses; write such functions with a dollar-quoted body.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::database {

struct SqlStatement {
  std::string text;  // from its first token up to (not including) the terminating `;`
  int line = 1;      // 1-based line of the first token in the script
  // For `COPY ... FROM STDIN`: the data lines (each ending in '\n'), without the `\.` line.
  std::optional<std::string> copy_data;
};

// Splits `script`. InvalidArgument (naming the line) for an unterminated quote or comment, a COPY
// without its `\.` terminator, or a psql meta-command.
[[nodiscard]] absl::StatusOr<std::vector<SqlStatement>> SplitSqlScript(std::string_view script);

// True for statements PostgreSQL refuses inside a transaction block (VACUUM, CREATE/DROP
// DATABASE, ... CONCURRENTLY, ALTER SYSTEM, tablespaces, subscriptions) and for transaction
// control (BEGIN, COMMIT, ROLLBACK, ...). A script with any such statement runs without a
// wrapping transaction.
bool NeedsOwnTransaction(const SqlStatement& statement);

// The line (1-based, counted from `statement.line`) of PostgreSQL's error position: a 1-based
// character (not byte) index into `statement.text`. Positions out of range give statement.line.
int LineOfPosition(const SqlStatement& statement, int position);

}  // namespace eph::database
