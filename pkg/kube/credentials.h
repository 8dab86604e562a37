// Credentials for the Kubernetes API: where a request's bearer token or client certificate comes
// from, and when it is fetched again.
//
// Contract:
//  - Get() returns the credentials for the next request. Sources that can change (a token file
//    that is rotated, an exec plugin whose credential expires) refresh themselves inside Get().
//  - Invalidate(rejected) is called after the API server answered 401 to `rejected`. A source that
//    can fetch something different forgets its cache and returns true, so the client retries once;
//    a static source returns false and the 401 goes to the caller.
//  - Errors are absl::Status whose message names where the credential is configured (the
//    kubeconfig file and user, or the service-account directory) and what is wrong.
//
// Thread-safety: every implementation here is safe to call from many threads at once; an exec
// plugin is run by one caller while the others wait for its result.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/clock.h"

namespace eph::kube {

struct Credentials {
  std::string bearer_token;            // sent as "Authorization: Bearer ..."
  std::string client_certificate_pem;  // TLS client certificate (with client_key_pem)
  std::string client_key_pem;

  bool operator==(const Credentials&) const = default;
};

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  [[nodiscard]] virtual absl::StatusOr<Credentials> Get() = 0;
  // The API server rejected `rejected` with 401. True if the next Get() may return something
  // else, i.e. the request is worth one more try.
  virtual bool Invalidate(const Credentials& rejected) {
    (void)rejected;
    return false;
  }
};

// Fixed credentials: kubeconfig token or client certificate data, or nothing at all.
class StaticCredentialSource final : public CredentialSource {
 public:
  explicit StaticCredentialSource(Credentials credentials) : credentials_(std::move(credentials)) {}
  absl::StatusOr<Credentials> Get() override { return credentials_; }

 private:
  const Credentials credentials_;
};

// A bearer token read from a file that someone else rotates (kubeconfig `tokenFile`, the
// in-cluster service-account token). The file is read again once the last read is older than
// `reread_after` on `clock`, and after a 401. `base` supplies the other fields (a client
// certificate configured alongside). `origin` says where the file is configured, for messages.
class TokenFileCredentialSource final : public CredentialSource {
 public:
  TokenFileCredentialSource(std::string path, Credentials base, const Clock& clock,
                            Duration reread_after, std::string origin);
  absl::StatusOr<Credentials> Get() override;
  bool Invalidate(const Credentials& rejected) override;

 private:
  const std::string path_;
  const Credentials base_;
  const Clock& clock_;
  const Duration reread_after_;
  const std::string origin_;
  std::mutex mu_;
  std::optional<Credentials> cached_;
  TimePoint read_at_{};
};

// The `exec` section of a kubeconfig user: a credential plugin (client-go's ExecCredential
// protocol, client.authentication.k8s.io/v1 and v1beta1).
struct ExecPluginConfig {
  std::string api_version;  // the ExecCredential version to request and accept
  std::string command;      // absolute, or a bare name looked up on PATH
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // added to Eph's own environment
  std::string install_hint;                              // shown when the command is missing
  std::string interactive_mode;                          // Never, IfAvailable (stdin is /dev/null)
  // KUBERNETES_EXEC_INFO as given to the plugin, already rendered (with the cluster when the
  // kubeconfig sets provideClusterInfo).
  std::string exec_info_json;
  Duration timeout = std::chrono::seconds(60);
};

// What a plugin's ExecCredential status carries.
struct ExecCredentialStatus {
  Credentials credentials;
  std::optional<TimePoint> expiry;  // nullopt: valid until the API server says 401
};

// Parses a plugin's stdout. `expected_api_version` must match the output's apiVersion.
[[nodiscard]] absl::StatusOr<ExecCredentialStatus> ParseExecCredential(
    const std::string& stdout_text, const std::string& expected_api_version);

// Runs the plugin (argv directly, never through a shell) and caches its credential until its
// expirationTimestamp has passed on `clock`, or until a 401. `base` supplies fields the plugin
// does not (a client certificate configured in the kubeconfig next to a token plugin).
class ExecCredentialSource final : public CredentialSource {
 public:
  ExecCredentialSource(ExecPluginConfig config, Credentials base, const Clock& clock,
                       std::string origin);
  absl::StatusOr<Credentials> Get() override;
  bool Invalidate(const Credentials& rejected) override;

  // How many times the plugin has run: for tests and diagnostics.
  int runs() const;

 private:
  absl::StatusOr<ExecCredentialStatus> Run();

  const ExecPluginConfig config_;
  const Credentials base_;
  const Clock& clock_;
  const std::string origin_;
  mutable std::mutex mu_;
  std::optional<ExecCredentialStatus> cached_;
  int runs_ = 0;
};

}  // namespace eph::kube
