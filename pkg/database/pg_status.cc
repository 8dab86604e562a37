#include "pkg/database/pg_status.h"

#include <exception>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace eph::database {
namespace {

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

absl::Status FromSqlState(const std::string& state, const std::string& message) {
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "53") ||
      absl::StartsWith(state, "57P") || absl::StartsWith(state, "40")) {
    return absl::UnavailableError(message);
  }
  if (state == "55P03") return absl::DeadlineExceededError(message);
  if (state == "42501") return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

}  // namespace

std::string OneLine(std::string_view msg) {
  std::string out;
  for (absl::string_view part :
       absl::StrSplit(S(msg), absl::ByAnyChar("\n\t"), absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    if (!out.empty()) out += absl::ascii_ispunct(out.back()) ? " " : "; ";
    out.append(part.data(), part.size());
  }
  absl::StrReplaceAll({{"  ", " "}}, &out);
  return out;
}

std::string Scrub(std::string msg, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    if (s.size() >= 4) absl::StrReplaceAll({{s, "***"}}, &msg);
  }
  return msg;
}

absl::Status CurrentExceptionStatus(std::string_view context,
                                    const std::vector<std::string>& secrets) {
  auto msg = [&](const std::exception& e) {
    return Scrub(absl::StrCat(S(context), ": ", OneLine(e.what())), secrets);
  };
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(msg(e));
  } catch (const pqxx::sql_error& e) {
    return FromSqlState(e.sqlstate(), msg(e));
  } catch (const std::exception& e) {
    return absl::InternalError(msg(e));
  } catch (...) {
    return absl::InternalError(absl::StrCat(S(context), ": unknown exception"));
  }
}

}  // namespace eph::database
