#include "pkg/kube/credentials.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/process_runner.h"

namespace eph::kube {
namespace {

// The last `max` bytes of a plugin's stderr, for an error message.
std::string Tail(const std::string& text, size_t max = 2000) {
  std::string t = text.size() > max ? "..." + text.substr(text.size() - max) : text;
  absl::StripTrailingAsciiWhitespace(&t);
  return t;
}

Credentials Overlay(const Credentials& base, const Credentials& top) {
  Credentials out = base;
  if (!top.bearer_token.empty()) out.bearer_token = top.bearer_token;
  if (!top.client_certificate_pem.empty()) {
    out.client_certificate_pem = top.client_certificate_pem;
    out.client_key_pem = top.client_key_pem;
  }
  return out;
}

}  // namespace

// ---- token file ---------------------------------------------------------------------------------

TokenFileCredentialSource::TokenFileCredentialSource(std::string path, Credentials base,
                                                     const Clock& clock, Duration reread_after,
                                                     std::string origin)
    : path_(std::move(path)),
      base_(std::move(base)),
      clock_(clock),
      reread_after_(reread_after),
      origin_(std::move(origin)) {}

absl::StatusOr<Credentials> TokenFileCredentialSource::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_.Now();
  if (cached_ && now - read_at_ < reread_after_) return *cached_;
  std::ifstream in(path_);
  if (!in) {
    return absl::FailedPreconditionError(
        fmt::format("{}: cannot read token file {}", origin_, path_));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  absl::StripAsciiWhitespace(&token);
  if (token.empty()) {
    return absl::FailedPreconditionError(fmt::format("{}: token file {} is empty", origin_, path_));
  }
  Credentials c = base_;
  c.bearer_token = std::move(token);
  cached_ = c;
  read_at_ = now;
  return c;
}

bool TokenFileCredentialSource::Invalidate(const Credentials& rejected) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_ && *cached_ == rejected) cached_.reset();
  return true;
}

// ---- exec plugin --------------------------------------------------------------------------------

absl::StatusOr<ExecCredentialStatus> ParseExecCredential(const std::string& stdout_text,
                                                         const std::string& expected_api_version) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(stdout_text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("its output is not an ExecCredential JSON object: {}", e.what()));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("its output is not an ExecCredential JSON object");
  }
  const std::string kind = doc.value("kind", "");
  const std::string api_version = doc.value("apiVersion", "");
  if (kind != "ExecCredential") {
    return absl::InvalidArgumentError(
        fmt::format("its output has kind \"{}\", want ExecCredential", kind));
  }
  if (!expected_api_version.empty() && api_version != expected_api_version) {
    return absl::InvalidArgumentError(
        fmt::format("its output has apiVersion \"{}\", but the kubeconfig asks for \"{}\"",
                    api_version, expected_api_version));
  }
  const auto status = doc.find("status");
  if (status == doc.end() || !status->is_object()) {
    return absl::InvalidArgumentError("its ExecCredential has no status");
  }
  auto str = [&](const char* key) -> std::string {
    const auto it = status->find(key);
    return it != status->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ExecCredentialStatus out;
  out.credentials.bearer_token = str("token");
  out.credentials.client_certificate_pem = str("clientCertificateData");
  out.credentials.client_key_pem = str("clientKeyData");
  const bool has_cert = !out.credentials.client_certificate_pem.empty();
  const bool has_key = !out.credentials.client_key_pem.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(
        "its ExecCredential has only one of clientCertificateData and clientKeyData");
  }
  if (out.credentials.bearer_token.empty() && !has_cert) {
    return absl::InvalidArgumentError(
        "its ExecCredential status has neither a token nor clientCertificateData/clientKeyData");
  }
  const std::string expiry = str("expirationTimestamp");
  if (!expiry.empty()) {
    absl::Time t;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, expiry, &t, &error)) {
      return absl::InvalidArgumentError(
          fmt::format("its expirationTimestamp \"{}\" is not RFC 3339: {}", expiry, error));
    }
    out.expiry = absl::ToChronoTime(t);
  }
  return out;
}

ExecCredentialSource::ExecCredentialSource(ExecPluginConfig config, Credentials base,
                                           const Clock& clock, std::string origin)
    : config_(std::move(config)),
      base_(std::move(base)),
      clock_(clock),
      origin_(std::move(origin)) {}

absl::StatusOr<Credentials> ExecCredentialSource::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_ && (!cached_->expiry || clock_.Now() < *cached_->expiry)) {
    return Overlay(base_, cached_->credentials);
  }
  cached_.reset();
  absl::StatusOr<ExecCredentialStatus> fresh = Run();
  if (!fresh.ok()) return fresh.status();
  cached_ = *std::move(fresh);
  return Overlay(base_, cached_->credentials);
}

bool ExecCredentialSource::Invalidate(const Credentials& rejected) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_ && Overlay(base_, cached_->credentials) == rejected) cached_.reset();
  return true;
}

int ExecCredentialSource::runs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_;
}

absl::StatusOr<ExecCredentialStatus> ExecCredentialSource::Run() {
  ++runs_;
  const std::string what = fmt::format("{}: exec plugin {}", origin_, config_.command);
  if (config_.interactive_mode == "Always") {
    return absl::FailedPreconditionError(fmt::format(
        "{} needs interactiveMode Always (a terminal), which Eph cannot provide", what));
  }
  ProcessSpec spec;
  spec.argv.push_back(config_.command);
  spec.argv.insert(spec.argv.end(), config_.args.begin(), config_.args.end());
  spec.env = config_.env;
  spec.env.emplace_back("KUBERNETES_EXEC_INFO", config_.exec_info_json);
  spec.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config_.timeout);
  absl::StatusOr<ProcessResult> result = RunProcess(spec);
  if (!result.ok()) {
    std::string hint = config_.install_hint.empty() ? "" : "; " + config_.install_hint;
    if (absl::IsNotFound(result.status())) {
      return absl::FailedPreconditionError(
          fmt::format("{}: {}{}", what, MessageOf(result.status()), hint));
    }
    return absl::UnavailableError(fmt::format("{}: {}", what, MessageOf(result.status())));
  }
  if (result->timed_out) {
    return absl::UnavailableError(
        fmt::format("{} did not finish within {}s and was killed", what,
                    std::chrono::duration_cast<std::chrono::seconds>(config_.timeout).count()));
  }
  if (result->term_signal != 0) {
    return absl::UnavailableError(fmt::format("{} was killed by signal {}: {}", what,
                                              result->term_signal, Tail(result->err)));
  }
  if (result->exit_code != 0) {
    return absl::UnavailableError(
        fmt::format("{} exited with code {}: {}", what, result->exit_code, Tail(result->err)));
  }
  absl::StatusOr<ExecCredentialStatus> parsed =
      ParseExecCredential(result->out, config_.api_version);
  if (!parsed.ok()) {
    return absl::FailedPreconditionError(fmt::format("{}: {}", what, MessageOf(parsed.status())));
  }
  return parsed;
}

}  // namespace eph::kube
