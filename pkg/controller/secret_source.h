// SecretSource: where the values of eph.yaml's `environment.secrets` come from. Never from the
// pull request: eph.yaml names a secret, ephd's operator supplies its value.
//
// DirectorySecretSource is ephd's `secrets_dir` (EPH_SECRETS_DIR): one file per secret, named
// exactly as the secret, holding its value; one trailing newline ("\n" or "\r\n") is dropped,
// as editors and `echo` add one. A Kubernetes Secret mounted as a volume has this layout, so the
// same setting serves ephd running in a cluster.
//
// Values are secret: implementations never log them or put them in a status message.
//
// Thread-safety: Get may be called from many threads at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::controller {

class SecretSource {
 public:
  virtual ~SecretSource() = default;

  // The value of secret `name`, an environment variable name ([A-Za-z_][A-Za-z0-9_]*).
  // NotFound when this source has no such secret; FailedPrecondition when it has one that
  // cannot be read (the message says why, for the operator); InvalidArgument for a name that is
  // not a variable name.
  virtual absl::StatusOr<std::string> Get(const std::string& name) const = 0;

  // Where values come from, for messages: "secrets_dir /etc/eph/secrets".
  virtual std::string Describe() const = 0;
};

class DirectorySecretSource final : public SecretSource {
 public:
  // Largest value read; a bigger file is refused rather than put into every container.
  static constexpr size_t kMaxValueBytes = 64 * 1024;

  explicit DirectorySecretSource(std::string dir) : dir_(std::move(dir)) {}

  absl::StatusOr<std::string> Get(const std::string& name) const override;
  std::string Describe() const override { return "secrets_dir " + dir_; }

 private:
  std::string dir_;
};

// Several sources asked in order: the first that has a secret gives its value. A source's error
// other than NotFound is the answer (an unreachable API server must not make a later source's
// stale copy win).
class ChainedSecretSource final : public SecretSource {
 public:
  explicit ChainedSecretSource(std::vector<std::unique_ptr<SecretSource>> sources)
      : sources_(std::move(sources)) {}

  absl::StatusOr<std::string> Get(const std::string& name) const override;
  std::string Describe() const override;  // "secrets_dir /a, Kubernetes Secret ns/name"

 private:
  std::vector<std::unique_ptr<SecretSource>> sources_;
};

// The values of every secret in `names` (eph.yaml's `environment.secrets`) from `source` (null:
// ephd has no source). FailedPrecondition, naming every secret `source` lacks and where it
// looked, when any is missing ("secret STRIPE_KEY is not configured in ephd (secrets_dir
// /etc/eph/secrets)"), or the first other error as the source gave it (FailedPrecondition for
// an unreadable file: terminal, the operator must act; Unavailable for an unreachable API
// server: retried).
absl::StatusOr<std::map<std::string, std::string>> ResolveSecrets(
    const std::vector<std::string>& names, const SecretSource* source);

// `text` with every value in `secrets` (name -> value) of at least kMinRedactedLength bytes
// replaced by "[secret NAME]". For what the app itself may echo into a message Eph shows (a
// crashed container's last log lines, a pod's status): Eph never writes a value on its own, but
// an app printing its environment must not carry one into the pull-request comment. Shorter
// values are left: they would blank out ordinary words and are no secret worth the name.
inline constexpr size_t kMinRedactedLength = 4;
std::string RedactSecretValues(std::string text, const std::map<std::string, std::string>& secrets);

}  // namespace eph::controller
