// RegistryAuth: per-registry credentials for pulling images, read from one file in Docker's
// config.json format that the operator gives ephd (registry_auth_file / EPH_REGISTRY_AUTH_FILE).
// Never from the pull request: a preview's code must not choose whose credentials it pulls with.
//
//   {"auths": {"registry.example.com:5000": {"auth": "<base64 user:password>"},
//              "https://index.docker.io/v1/": {"username": "u", "password": "p"}}}
//
// Keys are normalised to a bare host[:port], lower-case ("https://" / "http://" and any path
// dropped; index.docker.io, registry-1.docker.io and registry.hub.docker.com are "docker.io"), so
// a key written as `docker login` writes it and one written by hand find the same images. Other
// top-level keys of a config.json (credsStore, credHelpers, ...) are ignored: a helper would run a
// program on ephd's host, which this file does not configure. An entry with an identity token
// only is refused (Eph sends basic credentials).
//
// The Docker provider sends the matching entry as the Engine API's X-Registry-Auth header; the
// Kubernetes provider writes the entries as a kubernetes.io/dockerconfigjson Secret.
//
// Thread-safety: immutable after parsing; const methods may be called from many threads.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eph::providers {

struct RegistryCredential {
  std::string username;
  std::string password;

  friend bool operator==(const RegistryCredential&, const RegistryCredential&) = default;
};

class RegistryAuth {
 public:
  RegistryAuth() = default;
  explicit RegistryAuth(std::map<std::string, RegistryCredential> by_host)
      : by_host_(std::move(by_host)) {}

  // The credential for `host` (normalised as keys are), or null.
  const RegistryCredential* Find(std::string_view host) const;
  bool empty() const { return by_host_.empty(); }
  const std::map<std::string, RegistryCredential>& by_host() const { return by_host_; }

  // The Engine API's X-Registry-Auth value for `host`: base64url of
  // {"username", "password", "serveraddress"}; "" when there is no credential for it.
  std::string EngineAuthHeader(std::string_view host) const;

  // A .dockerconfigjson document with every entry (username, password and auth of each), keyed
  // as kubelet and Docker expect them (docker.io as https://index.docker.io/v1/).
  std::string DockerConfigJson() const;

 private:
  std::map<std::string, RegistryCredential> by_host_;
};

// "https://Index.Docker.io/v1/" -> "docker.io"; "http://127.0.0.1:5000/x" -> "127.0.0.1:5000".
std::string NormalizeRegistryHost(std::string_view key);

// The registry host of an image reference, as Docker resolves it: "nginx:1" and "library/x" ->
// "docker.io"; "127.0.0.1:5000/app:v1" -> "127.0.0.1:5000"; "localhost/app" -> "localhost".
std::string RegistryHostOf(std::string_view image);

// Parses a config.json text; `origin` (the file's path) prefixes every message.
// InvalidArgument: not JSON, no "auths" object, an entry without usable credentials, an `auth`
// that is not base64 of "user:password".
[[nodiscard]] absl::StatusOr<RegistryAuth> ParseRegistryAuth(std::string_view text,
                                                             std::string_view origin);

// Reads and parses `path`. InvalidArgument when it cannot be read (naming the path), or as above.
[[nodiscard]] absl::StatusOr<RegistryAuth> LoadRegistryAuthFile(const std::string& path);

}  // namespace eph::providers
