#include "pkg/providers/kubernetes/kubernetes_provider.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/base/random.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_config.h"
#include "pkg/providers/kubernetes/database_server.h"
#include "pkg/providers/kubernetes/workload_status.h"
#include "spdlog/spdlog.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

constexpr char kVersion[] = "0.1.0 (server-side apply, kustomize, helm)";

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& Meta(const json& o) {
  static const json kEmpty = json::object();
  if (!o.is_object()) return kEmpty;
  const auto it = o.find("metadata");
  return it != o.end() && it->is_object() ? *it : kEmpty;
}

std::string Label(const json& o, const char* key) {
  return Str(Meta(o).value("labels", json::object()), key);
}

std::string Annotation(const json& o, const char* key) {
  return Str(Meta(o).value("annotations", json::object()), key);
}

// An existing namespace an environment may use: Eph's, this environment's, this installation's
// (`labels` holds the request's kInstallationLabel, if any), and not being deleted.
absl::Status CheckNamespaceUsable(const json& existing, const std::string& ns,
                                  const std::string& environment,
                                  const std::map<std::string, std::string>& labels) {
  if (Label(existing, kManagedByLabel) != kManagedByValue ||
      Label(existing, kEnvironmentLabel) != environment) {
    return absl::FailedPreconditionError(fmt::format(
        "namespace {} exists and does not belong to environment {} (labels {}={} and {}={} "
        "missing); Eph does not take over namespaces it did not create",
        ns, environment, kManagedByLabel, kManagedByValue, kEnvironmentLabel, environment));
  }
  const auto ours = labels.find(kInstallationLabel);
  const std::string theirs = Label(existing, kInstallationLabel);
  if (ours != labels.end() && !theirs.empty() && theirs != ours->second) {
    return absl::FailedPreconditionError(fmt::format(
        "namespace {} belongs to another installation of Eph ({}={}); each installation "
        "manages only its own environments",
        ns, kInstallationLabel, theirs));
  }
  if (Meta(existing).contains("deletionTimestamp")) {
    return absl::UnavailableError(fmt::format(
        "namespace {} is still being deleted (an earlier attempt or a destroy); it can be "
        "created again once it is gone",
        ns));
  }
  return absl::OkStatus();
}

std::set<std::string> SplitKinds(const std::string& text) {
  std::set<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.insert(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string JoinKinds(const std::set<std::string>& kinds) {
  std::string out;
  for (const std::string& k : kinds) out += (out.empty() ? "" : ",") + k;
  return out;
}

bool IsTerminal(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ||
         absl::IsPermissionDenied(s) || absl::IsNotFound(s) || absl::IsAlreadyExists(s);
}

// "/apis/apps/v1/deployments" -> "/apis/apps/v1/namespaces/NS/deployments"
std::string InNamespace(const std::string& collection, const std::string& ns) {
  const size_t slash = collection.rfind('/');
  return collection.substr(0, slash) + "/namespaces/" + ns + collection.substr(slash);
}

absl::StatusOr<bool> ParseBool(const std::string& value, const std::string& key) {
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  return absl::InvalidArgumentError(
      fmt::format("provider setting {}: '{}' is not true or false", key, value));
}

absl::StatusOr<size_t> ParseBytes(const std::string& value, const std::string& key) {
  size_t i = 0;
  while (i < value.size() && std::isdigit(static_cast<unsigned char>(value[i])) != 0) ++i;
  const std::string digits = value.substr(0, i);
  std::string unit = value.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::map<std::string, size_t> kUnits = {
      {"", 1},          {"B", 1},          {"K", 1000},        {"KB", 1000},     {"M", 1000000},
      {"MB", 1000000},  {"G", 1000000000}, {"GB", 1000000000}, {"Ki", 1u << 10}, {"KiB", 1u << 10},
      {"Mi", 1u << 20}, {"MiB", 1u << 20}, {"Gi", 1u << 30},   {"GiB", 1u << 30}};
  const auto it = kUnits.find(unit);
  if (digits.empty() || it == kUnits.end() || digits.size() > 12) {
    return absl::InvalidArgumentError(
        fmt::format("provider setting {}: '{}' is not a size (e.g. 20MiB, 50000000)", key, value));
  }
  return static_cast<size_t>(std::stoull(digits)) * it->second;
}

absl::StatusOr<int64_t> ParseCount(const std::string& value, const std::string& key, int64_t min,
                                   int64_t max) {
  int64_t v = 0;
  try {
    size_t used = 0;
    v = std::stoll(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
  } catch (const std::exception&) {
    return absl::InvalidArgumentError(
        fmt::format("provider setting {}: '{}' is not a number", key, value));
  }
  if (v < min || v > max) {
    return absl::InvalidArgumentError(
        fmt::format("provider setting {}: {} is not between {} and {}", key, v, min, max));
  }
  return v;
}

// eph.yaml's kubernetes.web and the names a default entry service may have (the project's, from
// the section, and the repository's, "owner/repo"), into `ingress`.
absl::Status ReadEntrySettings(const std::string& config_json, const std::string& repository,
                               IngressSettings& ingress) {
  json doc = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.contains("kubernetes")) doc = doc["kubernetes"];
  if (!doc.is_object()) return absl::OkStatus();  // ParseKubernetesSection has refused it
  const std::string project = Str(doc, "project");
  if (!project.empty()) ingress.project_names.push_back(project);
  const std::string repo = absl::AsciiStrToLower(repository.substr(repository.rfind('/') + 1));
  if (!repo.empty() && repo != project) ingress.project_names.push_back(repo);
  const json web = doc.value("web", json());
  if (web.is_null()) return absl::OkStatus();
  if (!web.is_object() || !web.value("service", json()).is_string() ||
      !web.value("port", json()).is_number_integer()) {
    return absl::InvalidArgumentError("kubernetes.web needs a `service` and a `port`");
  }
  ingress.web_service = web["service"].get<std::string>();
  ingress.web_port = web["port"].get<int>();
  return absl::OkStatus();
}

}  // namespace

KubernetesProviderOptions DefaultProviderOptions() {
  KubernetesProviderOptions o;
  o.namespace_settings.quota = {{"pods", "50"},
                                {"requests.cpu", "8"},
                                {"requests.memory", "16Gi"},
                                {"limits.cpu", "16"},
                                {"limits.memory", "32Gi"},
                                {"services.loadbalancers", "0"},
                                {"services.nodeports", "0"}};
  o.namespace_settings.default_limits = {{"cpu", "500m"}, {"memory", "512Mi"}};
  o.namespace_settings.default_requests = {{"cpu", "50m"}, {"memory", "64Mi"}};
  o.namespace_settings.ingress_namespace_labels = {
      {"kubernetes.io/metadata.name", "ingress-nginx"}};
  return o;
}

absl::StatusOr<KubernetesProviderOptions> ParseProviderSettings(const ProviderSettings& settings) {
  KubernetesProviderOptions o = DefaultProviderOptions();
  static const std::set<std::string> kKnown = {"kubeconfig",
                                               "context",
                                               "kustomize_path",
                                               "helm_path",
                                               "render_timeout",
                                               "render_max_bytes",
                                               "render_temp_dir",
                                               "resource_quota",
                                               "limit_range_default",
                                               "limit_range_default_request",
                                               "network_policy",
                                               "ingress_namespace_selector",
                                               "ingress_class",
                                               "tls_issuer",
                                               "tls_issuer_kind",
                                               "apply_concurrency",
                                               "watch",
                                               "log_tail_lines",
                                               "base_domain",
                                               "database_client_namespace",
                                               "registry_auth_file"};
  for (const auto& [key, value] : settings.values) {
    if (kKnown.count(key) == 0) {
      std::string known;
      for (const std::string& k : kKnown) known += (known.empty() ? "" : ", ") + k;
      return absl::InvalidArgumentError(
          fmt::format("unknown setting '{}' for the Kubernetes provider (known: {})", key, known));
    }
    if (key == "kustomize_path") {
      o.render.kustomize_path = value;
    } else if (key == "helm_path") {
      o.render.helm_path = value;
    } else if (key == "render_temp_dir") {
      o.render.temp_dir = value;
    } else if (key == "render_timeout") {
      absl::Duration d;
      if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(fmt::format(
            "provider setting render_timeout: '{}' is not a positive duration (e.g. 60s)", value));
      }
      o.render.timeout = std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
    } else if (key == "render_max_bytes") {
      absl::StatusOr<size_t> n = ParseBytes(value, key);
      if (!n.ok()) return n.status();
      o.render.max_output_bytes = *n;
    } else if (key == "resource_quota") {
      absl::StatusOr<std::map<std::string, std::string>> m = ParseKeyValueList(value, key);
      if (!m.ok()) return m.status();
      o.namespace_settings.quota = *std::move(m);
    } else if (key == "limit_range_default") {
      absl::StatusOr<std::map<std::string, std::string>> m = ParseKeyValueList(value, key);
      if (!m.ok()) return m.status();
      o.namespace_settings.default_limits = *std::move(m);
    } else if (key == "limit_range_default_request") {
      absl::StatusOr<std::map<std::string, std::string>> m = ParseKeyValueList(value, key);
      if (!m.ok()) return m.status();
      o.namespace_settings.default_requests = *std::move(m);
    } else if (key == "ingress_namespace_selector") {
      absl::StatusOr<std::map<std::string, std::string>> m = ParseKeyValueList(value, key);
      if (!m.ok()) return m.status();
      o.namespace_settings.ingress_namespace_labels = *std::move(m);
    } else if (key == "network_policy") {
      absl::StatusOr<bool> b = ParseBool(value, key);
      if (!b.ok()) return b.status();
      o.namespace_settings.network_policy = *b;
    } else if (key == "ingress_class") {
      o.ingress.ingress_class = value;
    } else if (key == "tls_issuer") {
      o.ingress.tls_issuer = value;
    } else if (key == "tls_issuer_kind") {
      if (value != "ClusterIssuer" && value != "Issuer") {
        return absl::InvalidArgumentError(fmt::format(
            "provider setting tls_issuer_kind: '{}' is neither ClusterIssuer nor Issuer", value));
      }
      o.ingress.tls_issuer_kind = value;
    } else if (key == "apply_concurrency") {
      absl::StatusOr<int64_t> n = ParseCount(value, key, 1, 64);
      if (!n.ok()) return n.status();
      o.applier.concurrency = static_cast<int>(*n);
    } else if (key == "watch") {
      absl::StatusOr<bool> b = ParseBool(value, key);
      if (!b.ok()) return b.status();
      o.watch = *b;
    } else if (key == "log_tail_lines") {
      absl::StatusOr<int64_t> n = ParseCount(value, key, 1, 1'000'000);
      if (!n.ok()) return n.status();
      o.log_tail_lines = *n;
    } else if (key == "base_domain") {
      o.base_domain = value;
    } else if (key == "database_client_namespace") {
      o.database_client_namespace = value;
    } else if (key == "registry_auth_file" && !value.empty()) {
      absl::StatusOr<RegistryAuth> auth = LoadRegistryAuthFile(value);
      if (!auth.ok()) return auth.status();
      o.registry_auth = *std::move(auth);
    }
  }
  return o;
}

KubernetesProvider::KubernetesProvider(std::shared_ptr<kube::KubeClient> client,
                                       KubernetesProviderOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      renderer_(options_.render),
      applier_(*client_, options_.applier) {
  if (options_.watch) {
    cache_ = std::make_unique<ReadinessCache>(*client_,
                                              std::string(kManagedByLabel) + "=" + kManagedByValue);
    cache_->SetChangeListener([this](const std::string& environment) { Publish(environment); });
    cache_->Start();
  }
}

KubernetesProvider::~KubernetesProvider() {
  if (cache_) cache_->Stop();
}

ProviderInfo KubernetesProvider::Info() const { return {kProviderName, kVersion}; }

absl::Status KubernetesProvider::WatchChanges(const ChangeSink& sink, std::stop_token stop) {
  if (!cache_) {
    return absl::UnimplementedError(
        "the Kubernetes provider watches nothing (setting watch: false); Observe reads the API");
  }
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(sinks_mu_);
    id = next_sink_++;
    sinks_[id] = &sink;
  }
  // The cache's watch threads deliver; this call only keeps the sink registered until asked to
  // stop.
  std::mutex wait_mu;
  std::condition_variable_any stopped;
  std::unique_lock<std::mutex> wait_lock(wait_mu);
  stopped.wait(wait_lock, stop, [] { return false; });
  std::lock_guard<std::mutex> lock(sinks_mu_);
  sinks_.erase(id);
  return absl::OkStatus();
}

void KubernetesProvider::Publish(const std::string& environment) {
  std::lock_guard<std::mutex> lock(sinks_mu_);
  for (const auto& [id, sink] : sinks_) (*sink)(EnvironmentChange{environment});
}

bool KubernetesProvider::WatchesSynced() const { return cache_ && cache_->Synced(); }

std::optional<Observation> KubernetesProvider::ObserveFromWatches(const EnvironmentRef& ref) const {
  if (!cache_) return std::nullopt;
  return cache_->Evaluate(NamespaceOf(ref));
}

std::string KubernetesProvider::NamespaceOf(const EnvironmentRef& ref) const {
  return ref.namespace_name.empty() ? "eph-" + ref.environment : ref.namespace_name;
}

std::string KubernetesProvider::LabelSelectorFor(const std::string& environment) const {
  return fmt::format("{}={},{}={}", kManagedByLabel, kManagedByValue, kEnvironmentLabel,
                     environment);
}

namespace {

absl::Status ResolveHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (found != nullptr) freeaddrinfo(found);
  if (rc != 0) return absl::UnavailableError(gai_strerror(rc));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DatabaseServer> KubernetesProvider::EnsureDatabaseServer(
    const DatabaseServerRequest& request) {
  if (request.environment.empty() || request.image.empty()) {
    return absl::InvalidArgumentError(
        "Kubernetes provider: a database server needs an environment and an image");
  }
  if (absl::Status st = kube::ValidatePathSegment(request.name, "database name"); !st.ok()) {
    return st;
  }
  const std::string ns = NamespaceOf({request.environment, request.namespace_name});
  if (absl::Status st = kube::ValidatePathSegment(ns, "namespace"); !st.ok()) return st;
  std::map<std::string, std::string> labels = request.labels;
  labels[kManagedByLabel] = kManagedByValue;
  labels[kEnvironmentLabel] = request.environment;

  // The namespace: ours, or new. Never re-applied here: Apply owns its bookkeeping annotations.
  const std::string ns_path = "/api/v1/namespaces/" + ns;
  absl::StatusOr<json> existing = client_->Get(ns_path);
  if (existing.ok()) {
    if (absl::Status st = CheckNamespaceUsable(*existing, ns, request.environment, labels);
        !st.ok()) {
      return st;
    }
  } else if (absl::IsNotFound(existing.status())) {
    if (absl::StatusOr<json> made =
            applier_.ApplyOne(ns_path, BuildNamespace(ns, labels, {}), "v1/Namespace " + ns);
        !made.ok()) {
      return made.status();
    }
  } else {
    return existing.status();
  }

  // The password: the Secret's, once made.
  const std::string secret_path =
      fmt::format("/api/v1/namespaces/{}/secrets/{}", ns, DatabaseSecretName(request.name));
  std::string password;
  if (absl::StatusOr<json> secret = client_->Get(secret_path); secret.ok()) {
    const json data = secret->value("data", json::object());
    if (data.is_object() && data.value("POSTGRES_PASSWORD", json()).is_string()) {
      absl::Base64Unescape(data["POSTGRES_PASSWORD"].get<std::string>(), &password);
    }
  } else if (!absl::IsNotFound(secret.status())) {
    return secret.status();
  }
  if (password.empty()) password = SecureRandom::Instance().Hex(24);

  std::map<std::string, std::string> object_labels = labels;
  object_labels[kDatabaseLabel] = request.name;
  absl::StatusOr<std::vector<PreparedObject>> prepared = applier_.Prepare(
      BuildDatabaseServerObjects({.name = request.name,
                                  .image = request.image,
                                  .password = password,
                                  .client_namespace = options_.database_client_namespace}),
      ns, object_labels);
  if (!prepared.ok()) return prepared.status();
  absl::StatusOr<std::vector<json>> applied = applier_.ApplyAll(*prepared);
  if (!applied.ok()) return applied.status();

  DatabaseServer out;
  out.app_host = request.name;
  out.app_port = 5432;
  // Ready when the StatefulSet is (as for the app's workloads); a pod that cannot start says why.
  absl::StatusOr<json> sts =
      client_->Get(fmt::format("/apis/apps/v1/namespaces/{}/statefulsets/{}", ns, request.name));
  if (!sts.ok()) return sts.status();
  if (EvaluateWorkload(*sts).phase == Phase::kReady) {
    // ephd seeds the server at its Service name: it must resolve where ephd runs.
    const std::string host = fmt::format("{}.{}.svc", request.name, ns);
    absl::Status resolved = options_.resolve_host ? options_.resolve_host(host) : ResolveHost(host);
    if (!resolved.ok()) {
      if (!options_.in_cluster) {
        return absl::FailedPreconditionError(fmt::format(
            "the database `{}` is running, but ephd cannot reach it at {} ({}): ephd runs "
            "outside the cluster (it was given a kubeconfig), and a database server of the "
            "environment's own is reached at its Service name. Run ephd in the cluster, or use "
            "`placement: shared`",
            request.name, host, kube::MessageOf(resolved)));
      }
      out.message = fmt::format("database `{}`: waiting for {} to resolve", request.name, host);
      return out;
    }
    out.ready = true;
    out.admin_url =
        fmt::format("postgresql://{}:{}@{}:5432/postgres", kDatabaseAdminUser, password, host);
    return out;
  }
  absl::StatusOr<kube::ListResult> pods =
      client_->List(fmt::format("/api/v1/namespaces/{}/pods", ns),
                    {.label_selector = fmt::format("{}={}", kDatabaseLabel, request.name)});
  if (!pods.ok()) return pods.status();
  for (const json& pod : pods->items) {
    if (std::optional<std::string> failure = PodFailure(pod)) {
      return absl::FailedPreconditionError(fmt::format("the database `{}` ({}) cannot start: {}",
                                                       request.name, request.image, *failure));
    }
  }
  out.message = fmt::format("database `{}`: waiting for its pod to be ready", request.name);
  return out;
}

std::string KubernetesProvider::HostOf(const ApplyRequest& request) const {
  std::string host = request.host;
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty() && !options_.base_domain.empty()) {
    host = request.environment + "." + options_.base_domain;
  }
  return host;
}

absl::Status KubernetesProvider::AddEnvironmentObjects(const ApplyRequest& request,
                                                       const std::string& host,
                                                       std::vector<json>& rendered) const {
  IngressSettings ingress = options_.ingress;
  ingress.host = host;
  if (absl::Status st = ReadEntrySettings(request.config_json, request.project, ingress);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = ConfigureIngress(rendered, ingress); !st.ok()) return st;
  // Eph's own objects go through the same checks and labelling as the app's.
  // What Eph gives the app (the database's settings) reaches every container through a Secret.
  if (!request.secret_env.empty()) {
    for (json& object : rendered) AddEnvFrom(object);
  }
  // Images from private registries: every pod pulls with the credentials through its
  // ServiceAccount, whatever its manifest says.
  std::optional<json> pull_secret;
  if (!options_.registry_auth.empty()) {
    pull_secret = BuildPullSecret(options_.registry_auth.DockerConfigJson());
    AddPullSecretToServiceAccounts(rendered);
  }
  for (const std::optional<json>& own : {BuildResourceQuota(options_.namespace_settings),
                                         BuildLimitRange(options_.namespace_settings),
                                         BuildNetworkPolicy(options_.namespace_settings),
                                         BuildEnvSecret(request.secret_env), pull_secret,
                                         BuildRestrictedEgressPolicy(request.restricted)}) {
    if (own) rendered.push_back(*own);
  }
  return absl::OkStatus();
}

absl::StatusOr<ApplyResult> KubernetesProvider::Apply(const ApplyRequest& request) {
  if (request.environment.empty()) return absl::InvalidArgumentError("no environment name");
  const std::string ns =
      request.namespace_name.empty() ? "eph-" + request.environment : request.namespace_name;
  if (absl::Status st = kube::ValidatePathSegment(ns, "namespace"); !st.ok()) return st;

  // 1. Render and check everything before the cluster is touched.
  absl::StatusOr<RenderRequest> render = ParseKubernetesSection(request.config_json);
  if (!render.ok()) return render.status();
  render->source_dir = request.source_dir;
  render->images = request.images;
  render->namespace_name = ns;
  absl::StatusOr<std::vector<json>> rendered = renderer_.Render(*render);
  if (!rendered.ok()) return rendered.status();

  const std::string host = HostOf(request);
  if (absl::Status st = AddEnvironmentObjects(request, host, *rendered); !st.ok()) return st;
  std::map<std::string, std::string> labels = request.labels;
  labels[kManagedByLabel] = kManagedByValue;
  labels[kEnvironmentLabel] = request.environment;
  absl::StatusOr<std::vector<PreparedObject>> prepared =
      applier_.Prepare(*std::move(rendered), ns, labels);
  if (!prepared.ok()) return prepared.status();
  std::set<std::string> kinds;
  std::set<std::string> keep;
  for (const PreparedObject& p : *prepared) {
    kinds.insert(p.kind_key);
    keep.insert(p.id);
  }

  // 2. The namespace: ours, or new.
  const std::string ns_path = "/api/v1/namespaces/" + ns;
  bool first_apply = true;
  std::set<std::string> previous_kinds;
  std::string previous_sha;
  absl::StatusOr<json> existing = client_->Get(ns_path);
  if (existing.ok()) {
    if (absl::Status st = CheckNamespaceUsable(*existing, ns, request.environment, labels);
        !st.ok()) {
      return st;
    }
    previous_kinds = SplitKinds(Annotation(*existing, kAppliedKindsAnnotation));
    previous_sha = Annotation(*existing, kAppliedShaAnnotation);
    first_apply = previous_sha.empty();
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  std::set<std::string> all_kinds = kinds;
  all_kinds.insert(previous_kinds.begin(), previous_kinds.end());
  std::map<std::string, std::string> annotations = {
      {kAppliedKindsAnnotation, JoinKinds(all_kinds)}};
  if (!previous_sha.empty()) annotations[kAppliedShaAnnotation] = previous_sha;
  const std::map<std::string, std::string> ns_labels = NamespaceLabels(labels, request.restricted);
  if (absl::StatusOr<json> applied_ns = applier_.ApplyOne(
          ns_path, BuildNamespace(ns, ns_labels, annotations), "v1/Namespace " + ns);
      !applied_ns.ok()) {
    return applied_ns.status();
  }

  // 3. Everything else, after the quota is in force. On a first apply that cannot succeed,
  // nothing stays behind.
  absl::StatusOr<std::vector<json>> applied =
      applier_.ApplyAll(*prepared, [&] { return WaitForQuotas(ns); });
  if (!applied.ok()) {
    if (first_apply && IsTerminal(applied.status())) {
      kube::DeleteOptions del;
      del.propagation_policy = "Background";
      if (absl::Status st = client_->Delete(ns_path, del); !st.ok() && !absl::IsNotFound(st)) {
        spdlog::warn("kubernetes: {}: could not remove namespace {} after a failed first apply: {}",
                     request.environment, ns, st.ToString());
      }
    }
    return applied.status();
  }
  RecordExpectations(ns, *prepared, *applied, host);

  // 4. Prune what the render no longer has, then record what this apply consists of.
  absl::StatusOr<PruneResult> pruned =
      applier_.Prune(ns, LabelSelectorFor(request.environment) + ",!" + kDatabaseLabel, all_kinds,
                     keep);  // the environment's own database server is not the app's
  if (!pruned.ok()) return pruned.status();
  annotations[kAppliedKindsAnnotation] = JoinKinds(kinds);
  annotations[kAppliedShaAnnotation] = request.head_sha.empty() ? "unknown" : request.head_sha;
  if (absl::StatusOr<json> applied_ns = applier_.ApplyOne(
          ns_path, BuildNamespace(ns, ns_labels, annotations), "v1/Namespace " + ns);
      !applied_ns.ok()) {
    return applied_ns.status();
  }
  ApplyResult result;
  result.handle = "namespace/" + ns;
  result.summary = fmt::format("{} objects applied to namespace {}", prepared->size(), ns);
  if (pruned->deleted > 0) result.summary += fmt::format(", {} pruned", pruned->deleted);
  spdlog::info("kubernetes: {}: {}", request.environment, result.summary);
  return result;
}

absl::Status KubernetesProvider::WaitForQuotas(const std::string& ns) {
  const auto deadline = std::chrono::steady_clock::now() + options_.quota_wait;
  const std::string path = fmt::format("/api/v1/namespaces/{}/resourcequotas", ns);
  while (true) {
    absl::StatusOr<kube::ListResult> quotas = client_->List(path, {});
    if (!quotas.ok()) return quotas.status();
    std::string uncounted;
    for (const json& quota : quotas->items) {
      if (!QuotaEnforced(quota)) uncounted = Str(Meta(quota), "name");
    }
    if (uncounted.empty()) return absl::OkStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::UnavailableError(fmt::format(
          "ResourceQuota {} in namespace {} is not in force yet: the cluster's quota controller "
          "has not counted it within {} s (is kube-controller-manager running?); the app is "
          "applied once it is",
          uncounted, ns, std::chrono::duration_cast<std::chrono::seconds>(options_.quota_wait)
                             .count()));
    }
    // The controller counts a new quota within about 0.1 s; the list is small and cheap.
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

void KubernetesProvider::RecordExpectations(const std::string& ns,
                                            const std::vector<PreparedObject>& objects,
                                            const std::vector<json>& applied,
                                            const std::string& host) {
  std::vector<Expected> expected;
  for (size_t i = 0; i < objects.size() && i < applied.size(); ++i) {
    const std::string kind = Str(objects[i].object, "kind");
    if (kind != "Deployment" && kind != "StatefulSet" && kind != "DaemonSet" && kind != "Job" &&
        kind != "Pod") {
      continue;
    }
    Expected e;
    e.kind = kind;
    e.name = Str(Meta(objects[i].object), "name");
    e.path = objects[i].path;
    const json& gen = Meta(applied[i]).value("generation", json());
    e.generation = gen.is_number_integer() ? gen.get<int64_t>() : 0;
    expected.push_back(std::move(e));
  }
  std::lock_guard<std::mutex> lock(mu_);
  expected_[ns] = std::move(expected);
  hosts_[ns] = host;
}

absl::StatusOr<NamespaceSnapshot> KubernetesProvider::ReadNamespaceDirectly(const std::string& ns) {
  NamespaceSnapshot snap;
  absl::StatusOr<json> ns_object = client_->Get("/api/v1/namespaces/" + ns);
  if (!ns_object.ok()) {
    if (absl::IsNotFound(ns_object.status())) return snap;
    return ns_object.status();
  }
  snap.namespace_object = TrimForCache(*ns_object);
  const std::string selector = std::string(kManagedByLabel) + "=" + kManagedByValue;
  for (const WatchedKind& kind : ReadinessKinds()) {
    if (kind.kind == "Namespace") continue;
    absl::StatusOr<kube::ListResult> list =
        client_->List(InNamespace(kind.collection_path, ns), {.label_selector = selector});
    if (!list.ok()) return list.status();
    for (const json& item : list->items) snap.objects.push_back(TrimForCache(item));
  }
  return snap;
}

absl::StatusOr<Observation> KubernetesProvider::Observe(const EnvironmentRef& ref) {
  const std::string ns = NamespaceOf(ref);
  if (absl::Status st = kube::ValidatePathSegment(ns, "namespace"); !st.ok()) return st;
  std::optional<NamespaceSnapshot> snap;
  if (cache_) snap = cache_->Snapshot(ns);
  if (!snap) {
    absl::StatusOr<NamespaceSnapshot> direct = ReadNamespaceDirectly(ns);
    if (!direct.ok()) return direct.status();
    snap = *std::move(direct);
  }
  std::vector<Expected> expected;
  std::string host;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = expected_.find(ns); it != expected_.end()) expected = it->second;
    if (auto it = hosts_.find(ns); it != hosts_.end()) host = it->second;
  }
  // The watch may not have delivered what the last Apply wrote yet: read those objects directly
  // rather than judge an old generation.
  if (!snap->namespace_object.is_null()) {
    for (const Expected& e : expected) {
      auto it = std::find_if(snap->objects.begin(), snap->objects.end(), [&](const json& o) {
        return Str(o, "kind") == e.kind && Str(Meta(o), "name") == e.name;
      });
      if (it != snap->objects.end()) {
        const json& gen = Meta(*it).value("generation", json());
        if (gen.is_number_integer() && gen.get<int64_t>() >= e.generation) continue;
      }
      absl::StatusOr<json> fresh = client_->Get(e.path);
      if (!fresh.ok()) {
        if (absl::IsNotFound(fresh.status())) continue;
        return fresh.status();
      }
      json trimmed = TrimForCache(*fresh);
      if (it != snap->objects.end()) {
        *it = std::move(trimmed);
      } else {
        snap->objects.push_back(std::move(trimmed));
      }
    }
  }
  Observation obs = SummarizeEnvironment(snap->namespace_object, snap->objects);
  if (obs.phase == Phase::kReady && !host.empty()) obs.url = "https://" + host;
  return obs;
}

absl::StatusOr<DestroyResult> KubernetesProvider::Destroy(const EnvironmentRef& ref) {
  const std::string ns = NamespaceOf(ref);
  if (absl::Status st = kube::ValidatePathSegment(ns, "namespace"); !st.ok()) return st;
  const std::string path = "/api/v1/namespaces/" + ns;
  DestroyResult result;
  absl::StatusOr<json> existing = client_->Get(path);
  if (!existing.ok()) {
    if (!absl::IsNotFound(existing.status())) return existing.status();
    std::lock_guard<std::mutex> lock(mu_);
    expected_.erase(ns);
    hosts_.erase(ns);
    result.done = true;
    return result;
  }
  if (Label(*existing, kManagedByLabel) != kManagedByValue) {
    return absl::FailedPreconditionError(
        fmt::format("namespace {} is not managed by Eph (no {}={} label); Eph does not delete it",
                    ns, kManagedByLabel, kManagedByValue));
  }
  if (!ref.environment.empty() && Label(*existing, kEnvironmentLabel) != ref.environment) {
    return absl::FailedPreconditionError(
        fmt::format("namespace {} belongs to environment '{}', not '{}'; Eph does not delete it",
                    ns, Label(*existing, kEnvironmentLabel), ref.environment));
  }
  if (!Meta(*existing).contains("deletionTimestamp")) {
    kube::DeleteOptions del;
    del.propagation_policy = "Background";
    del.precondition_uid = Str(Meta(*existing), "uid");
    absl::Status st = client_->Delete(path, del);
    if (absl::IsNotFound(st)) {
      result.done = true;
      return result;
    }
    if (!st.ok()) return st;
  }
  result.done = false;
  result.message = fmt::format("namespace {} is terminating", ns);
  return result;
}

absl::StatusOr<std::vector<OwnedObject>> KubernetesProvider::ListOwned() {
  absl::StatusOr<kube::ListResult> list =
      client_->List("/api/v1/namespaces",
                    {.label_selector = std::string(kManagedByLabel) + "=" + kManagedByValue});
  if (!list.ok()) return list.status();
  std::vector<OwnedObject> out;
  for (const json& item : list->items) {
    OwnedObject o;
    o.kind = "Namespace";
    o.name = Str(Meta(item), "name");
    o.environment = Label(item, kEnvironmentLabel);
    o.installation = Label(item, kInstallationLabel);
    out.push_back(std::move(o));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<KubernetesProvider>> NewKubernetesProvider(
    const ProviderSettings& settings) {
  absl::StatusOr<KubernetesProviderOptions> options = ParseProviderSettings(settings);
  if (!options.ok()) return options.status();
  auto get = [&](const char* key) {
    auto it = settings.values.find(key);
    return it == settings.values.end() ? std::string() : it->second;
  };
  absl::StatusOr<kube::KubeConfig> config;
  if (!get("kubeconfig").empty()) {
    kube::KubeconfigOptions ko;
    ko.context = get("context");
    config = kube::LoadKubeconfig(get("kubeconfig"), ko);
  } else {
    options->in_cluster = true;
    config = kube::LoadInClusterConfig();
    if (!config.ok()) {
      return absl::FailedPreconditionError(fmt::format(
          "no kubeconfig is set and Eph is not running in a pod ({}); set EPH_KUBECONFIG",
          kube::MessageOf(config.status())));
    }
    // In a pod: environments' own database servers admit ephd's namespace.
    if (options->database_client_namespace.empty()) {
      std::ifstream in("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
      std::getline(in, options->database_client_namespace);
    }
  }
  if (!config.ok()) return config.status();
  auto client = std::make_shared<kube::KubeClient>(*std::move(config));
  return std::make_unique<KubernetesProvider>(std::move(client), *std::move(options));
}

absl::Status RegisterKubernetesProvider(ProviderRegistry& registry) {
  return registry.RegisterFactory(
      kProviderName,
      [](const ProviderSettings& settings) -> absl::StatusOr<std::unique_ptr<Provider>> {
        absl::StatusOr<std::unique_ptr<KubernetesProvider>> p = NewKubernetesProvider(settings);
        if (!p.ok()) return p.status();
        return std::unique_ptr<Provider>(std::move(*p));
      });
}

}  // namespace eph::providers::kubernetes
