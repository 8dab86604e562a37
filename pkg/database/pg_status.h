// From PostgreSQL's errors to Status: libpqxx exceptions mapped to canonical codes by SQLSTATE,
// server messages flattened to one line, and secrets scrubbed from whatever reaches a message.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace eph::database {

// `msg` on one line: lines and tabs joined with "; " (or a space after punctuation).
std::string OneLine(std::string_view msg);

// `msg` with every secret of 4 or more characters replaced by "***".
std::string Scrub(std::string msg, const std::vector<std::string>& secrets);

// The exception being handled (call only inside a catch block) as a Status whose message starts
// with `context`: a broken connection, SQLSTATE classes 08/53/57P/40 -> Unavailable; 55P03 (lock
// timeout) -> DeadlineExceeded; 42501 -> PermissionDenied; anything else Internal.
absl::Status CurrentExceptionStatus(std::string_view context,
                                    const std::vector<std::string>& secrets);

}  // namespace eph::database
