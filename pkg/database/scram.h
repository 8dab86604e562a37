// SCRAM-SHA-256 password verifiers in PostgreSQL's format (RFC 5802 with SHA-256, RFC 7677):
// what `CREATE ROLE ... PASSWORD` stores, computed by Eph, so the password itself never travels
// in a statement that a server with log_statement=ddl would log. Same result as libpq's
// PQencryptPasswordConn (16-byte salt, 4096 iterations) without a connection to ask.
//
// Thread-safety: pure functions (the overload taking a Random uses it as Random allows).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pkg/base/random.h"

namespace eph::database {

inline constexpr int kScramIterations = 4096;

// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", base64 each. The password must be
// ASCII (PostgreSQL's SASLprep leaves ASCII as it is; Eph's passwords are hex): InvalidArgument
// otherwise, as for an empty salt or iterations < 1.
[[nodiscard]] absl::StatusOr<std::string> ScramSha256Verifier(std::string_view password,
                                                              std::string_view salt,
                                                              int iterations = kScramIterations);

// With a fresh 16-byte salt from `random`.
[[nodiscard]] absl::StatusOr<std::string> ScramSha256Verifier(std::string_view password,
                                                              Random& random);

}  // namespace eph::database
