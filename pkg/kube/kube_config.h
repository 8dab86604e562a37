// KubeConfig: how to reach one Kubernetes API server and who to be there, from a kubeconfig file
// or from the service account of the pod Eph runs in.
//
// Kubeconfig support: one file (no KUBECONFIG merging), current-context or an explicit context;
// clusters with server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name,
// proxy-url; users with client-certificate(-data)/client-key(-data), token, tokenFile and exec
// plugins (client.authentication.k8s.io/v1 and v1beta1). Relative paths (certificate files,
// tokenFile, an exec command containing a '/') are resolved against the kubeconfig's directory,
// as kubectl does. Anything Eph cannot honour (auth-provider, username/password) is an error
// rather than silently ignored.
//
// Errors are InvalidArgument (the file is malformed or inconsistent) or FailedPrecondition (a
// file it names cannot be read), and every message starts with "kubeconfig <path>".
//
// Thread-safety: loading is a pure function of its inputs. A KubeConfig is an immutable value;
// its CredentialSource is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/kube/credentials.h"

namespace eph::kube {

struct KubeConfig {
  std::string server;     // "https://host:port", no trailing slash
  std::string ca_pem;     // trusted CAs; empty: the system trust store
  std::string ca_origin;  // where ca_pem came from, for TLS error messages
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // name to verify the server certificate against, if not the host
  std::string proxy_url;
  std::string default_namespace = "default";
  std::string origin;  // "kubeconfig /path (context c)" or "in-cluster service account"
  std::shared_ptr<CredentialSource> credentials;  // never null after loading
};

struct KubeconfigOptions {
  std::string context;           // empty: the file's current-context
  const Clock* clock = nullptr;  // exec credential expiry and token-file re-reads; null: system
  Duration token_file_reread = std::chrono::minutes(1);
  Duration exec_timeout = std::chrono::seconds(60);
};

[[nodiscard]] absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path,
                                                        const KubeconfigOptions& options = {});

// As LoadKubeconfig, with the file's content given; `path` is used for messages and to resolve
// relative paths.
[[nodiscard]] absl::StatusOr<KubeConfig> ParseKubeconfig(const std::string& yaml,
                                                         const std::string& path,
                                                         const KubeconfigOptions& options = {});

struct InClusterOptions {
  // The service-account mount: token, ca.crt, namespace. Injectable so tests use a temp dir.
  std::string root = "/var/run/secrets/kubernetes.io/serviceaccount";
  // KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT; null: the process environment.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  const Clock* clock = nullptr;
  // The kubelet rotates the projected token long before it expires; re-reading it this often
  // (and after any 401) is what client-go does.
  Duration token_reread = std::chrono::minutes(1);
};

// Errors: FailedPrecondition when not running in a pod (variables unset, files missing).
[[nodiscard]] absl::StatusOr<KubeConfig> LoadInClusterConfig(const InClusterOptions& options = {});

}  // namespace eph::kube
