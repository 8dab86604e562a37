// API tokens: how `ephd token create` makes a secret and how the API recognises it. Only the
// SHA-256 of a secret is stored; a request's token is hashed and looked up by that hash, so no
// secret is ever compared byte by byte (no timing side channel) and a stolen database holds no
// usable token.
//
// Thread-safety: pure functions (GenerateTokenSecret uses the thread-safe Random passed in).
#pragma once

#include <string>
#include <string_view>

#include "pkg/base/random.h"

namespace eph::api {

inline constexpr std::string_view kTokenPrefix = "eph_";

// "eph_" followed by 32 random bytes as 64 lowercase hex digits.
std::string GenerateTokenSecret(Random& random);

// Lowercase hex SHA-256 of `secret`: the value the store keeps.
std::string HashToken(std::string_view secret);

// The token of an `Authorization: Bearer <token>` header value; empty if it is not one.
std::string BearerToken(std::string_view authorization);

}  // namespace eph::api
