// WebhookVerifier: checks GitHub's X-Hub-Signature-256 (HMAC-SHA256 of the raw body, hex, with
// a "sha256=" prefix) in constant time, so a forged delivery learns nothing from timing.
//
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <string_view>

namespace eph::webhook {

// "sha256=<hex>" for `body` under `secret`: what GitHub sends, and what tests sign with.
std::string SignGitHub(std::string_view secret, std::string_view body);

// True only if `header` is exactly the signature of `body` under `secret`. An empty secret never
// verifies anything.
bool VerifyGitHub(std::string_view secret, std::string_view body, std::string_view header);

}  // namespace eph::webhook
