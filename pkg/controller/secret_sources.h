// KubernetesSecretSource: eph.yaml's `environment.secrets` from one Kubernetes Secret, read
// through the API at each deploy (ephd's `secrets_kubernetes_secret`). Each key of the Secret's
// `data` is a secret's name, its decoded value the secret's value, as is; unlike a file, no
// trailing newline is dropped (`kubectl create secret generic --from-literal` adds none).
//
// ephd needs `get` on that one Secret (a Role with resourceNames: [the Secret]). Values are never
// logged or put into messages; messages name the Secret and the key.
//
// OpenSecretSources: ephd's secret settings as one source.
//
// Thread-safety: Get may be called from many threads at once (KubeClient is thread-safe).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/controller/secret_source.h"
#include "pkg/kube/kube_client.h"

namespace eph::controller {

class KubernetesSecretSource final : public SecretSource {
 public:
  KubernetesSecretSource(std::shared_ptr<kube::KubeClient> client, std::string namespace_name,
                         std::string secret_name)
      : client_(std::move(client)),
        namespace_(std::move(namespace_name)),
        secret_(std::move(secret_name)) {}

  // Makes a client from `kubeconfig` (empty: the pod's in-cluster configuration) for
  // `reference`, "NAMESPACE/NAME" or "NAME" (in ephd's own namespace, when in a pod).
  // InvalidArgument naming the setting when either cannot be had.
  static absl::StatusOr<std::unique_ptr<KubernetesSecretSource>> Create(
      const std::string& kubeconfig, const std::string& reference);

  // NotFound when the Secret lacks the key; FailedPrecondition when the Secret does not exist or
  // ephd may not read it; Unavailable when the API server cannot be reached (retried).
  absl::StatusOr<std::string> Get(const std::string& name) const override;
  std::string Describe() const override {
    return "Kubernetes Secret " + namespace_ + "/" + secret_;
  }

 private:
  std::shared_ptr<kube::KubeClient> client_;
  std::string namespace_;
  std::string secret_;
};

// ephd's secret settings as one source: the files in `dir` (secrets_dir), then the keys of the
// Kubernetes Secret `kube_secret` ("NAMESPACE/NAME" or "NAME", read through `kubeconfig` or the
// pod's own configuration). Null when neither is set; InvalidArgument naming the setting when
// `dir` is not a directory or the Secret cannot be reached for want of a configuration.
absl::StatusOr<std::unique_ptr<SecretSource>> OpenSecretSources(const std::string& dir,
                                                                const std::string& kube_secret,
                                                                const std::string& kubeconfig);

}  // namespace eph::controller
