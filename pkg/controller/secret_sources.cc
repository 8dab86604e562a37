#include "pkg/controller/secret_sources.h"

#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_config.h"
#include "pkg/kube/resource_mapper.h"

namespace eph::controller {

absl::StatusOr<std::unique_ptr<KubernetesSecretSource>> KubernetesSecretSource::Create(
    const std::string& kubeconfig, const std::string& reference) {
  const std::string setting =
      "secrets_kubernetes_secret (--secrets-kubernetes-secret, EPH_SECRETS_KUBERNETES_SECRET)";
  std::string namespace_name;
  std::string name = reference;
  if (const size_t slash = reference.find('/'); slash != std::string::npos) {
    namespace_name = reference.substr(0, slash);
    name = reference.substr(slash + 1);
  }
  absl::StatusOr<kube::KubeConfig> config;
  if (!kubeconfig.empty()) {
    config = kube::LoadKubeconfig(kubeconfig, {});
  } else {
    config = kube::LoadInClusterConfig();
    if (namespace_name.empty()) {
      std::ifstream in("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
      std::getline(in, namespace_name);
    }
  }
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": no kubeconfig (EPH_KUBECONFIG) and not running in a pod: ",
                     kube::MessageOf(config.status())));
  }
  if (namespace_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        setting, " \"", reference, "\" needs a namespace (NAMESPACE/NAME) outside a pod"));
  }
  for (const auto& [segment, what] :
       {std::pair{namespace_name, "namespace"}, std::pair{name, "Secret name"}}) {
    if (absl::Status st = kube::ValidatePathSegment(segment, what); !st.ok() || segment.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(setting, " \"", reference, "\": not a valid ", what));
    }
  }
  return std::make_unique<KubernetesSecretSource>(
      std::make_shared<kube::KubeClient>(*std::move(config)), namespace_name, name);
}

absl::StatusOr<std::string> KubernetesSecretSource::Get(const std::string& name) const {
  absl::StatusOr<nlohmann::json> secret =
      client_->Get("/api/v1/namespaces/" + namespace_ + "/secrets/" + secret_);
  if (!secret.ok()) {
    switch (secret.status().code()) {
      case absl::StatusCode::kNotFound:
        return absl::FailedPreconditionError(Describe() + " does not exist");
      case absl::StatusCode::kPermissionDenied:
      case absl::StatusCode::kUnauthenticated:
        return absl::FailedPreconditionError(
            absl::StrCat("ephd may not read ", Describe(), ": ", kube::MessageOf(secret.status())));
      default:
        return absl::UnavailableError(
            absl::StrCat("reading ", Describe(), ": ", kube::MessageOf(secret.status())));
    }
  }
  const nlohmann::json* data = secret->contains("data") ? &(*secret)["data"] : nullptr;
  if (data == nullptr || !data->is_object() || !data->contains(name) ||
      !(*data)[name].is_string()) {
    return absl::NotFoundError("secret " + name + " is not configured in ephd (" + Describe() +
                               ")");
  }
  std::string value;
  if (!absl::Base64Unescape((*data)[name].get<std::string>(), &value)) {
    return absl::FailedPreconditionError("key " + name + " of " + Describe() + " is not base64");
  }
  if (value.find('\0') != std::string::npos) {
    return absl::FailedPreconditionError("key " + name + " of " + Describe() +
                                         " contains a NUL byte, which no environment variable "
                                         "can hold");
  }
  return value;
}

absl::StatusOr<std::unique_ptr<SecretSource>> OpenSecretSources(const std::string& dir,
                                                                const std::string& kube_secret,
                                                                const std::string& kubeconfig) {
  std::vector<std::unique_ptr<SecretSource>> sources;
  if (!dir.empty()) {
    std::error_code ec;
    const std::filesystem::path path = std::filesystem::absolute(dir, ec);
    if (ec || !std::filesystem::is_directory(path, ec)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secrets_dir \"", dir, "\" is not a directory (--secrets-dir, EPH_SECRETS_DIR or secrets_dir)"));
    }
    sources.push_back(std::make_unique<DirectorySecretSource>(path.lexically_normal().string()));
  }
  if (!kube_secret.empty()) {
    auto secret = KubernetesSecretSource::Create(kubeconfig, kube_secret);
    if (!secret.ok()) return secret.status();
    sources.push_back(*std::move(secret));
  }
  if (sources.empty()) return nullptr;
  if (sources.size() == 1) return std::move(sources.front());
  return std::make_unique<ChainedSecretSource>(std::move(sources));
}

}  // namespace eph::controller
