#include "pkg/providers/kubernetes/environment_objects.h"

#include <algorithm>
#include <set>

#include "fmt/format.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string TrimSpace(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

void MergeLabels(json& metadata_parent, const std::map<std::string, std::string>& labels) {
  if (!metadata_parent.is_object()) return;
  json& meta = metadata_parent["metadata"];
  if (!meta.is_object()) meta = json::object();
  json& l = meta["labels"];
  if (!l.is_object()) l = json::object();
  for (const auto& [k, v] : labels) l[k] = v;
}

// The app's own Ingress serves the environment's host: every rule and TLS entry names it.
void SetIngressHost(json& ingress, const std::string& host) {
  json& spec = ingress["spec"];
  if (!spec.is_object()) spec = json::object();
  json& rules = spec["rules"];
  if (!rules.is_array() || rules.empty()) {
    // An Ingress with only a default backend: give it a rule for the host that sends
    // everything to that backend.
    json rule = {{"host", host}};
    if (spec.contains("defaultBackend")) {
      rule["http"] = {{"paths", json::array({json{{"path", "/"},
                                                  {"pathType", "Prefix"},
                                                  {"backend", spec["defaultBackend"]}}})}};
    }
    rules = json::array({rule});
  } else {
    for (json& rule : rules) {
      if (rule.is_object()) rule["host"] = host;
    }
  }
  if (spec.contains("tls") && spec["tls"].is_array()) {
    for (json& t : spec["tls"]) {
      if (t.is_object()) t["hosts"] = json::array({host});
    }
  }
}

const json* Child(const json& o, std::initializer_list<const char*> path) {
  const json* cur = &o;
  for (const char* key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end() || !it->is_object()) return nullptr;
    cur = &*it;
  }
  return cur;
}

json* Child(json& o, std::initializer_list<const char*> path) {
  // The same walk as the const one; the object it finds is `o`'s, so it may be changed.
  return const_cast<json*>(Child(static_cast<const json&>(o), path));
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseKeyValueList(const std::string& text,
                                                                     const std::string& setting) {
  std::map<std::string, std::string> out;
  const std::string t = TrimSpace(text);
  if (t.empty() || t == "none" || t == "off") return out;
  size_t start = 0;
  while (start <= t.size()) {
    const size_t end = std::min(t.find(',', start), t.size());
    const std::string entry = TrimSpace(t.substr(start, end - start));
    start = end + 1;
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(fmt::format(
          "provider setting {}: '{}' is not key=value (expected e.g. \"pods=50,requests.cpu=4\")",
          setting, entry));
    }
    out[TrimSpace(entry.substr(0, eq))] = TrimSpace(entry.substr(eq + 1));
  }
  return out;
}

json BuildNamespace(const std::string& name, const std::map<std::string, std::string>& labels,
                    const std::map<std::string, std::string>& annotations) {
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  json l = json::object();
  for (const auto& [k, v] : labels) l[k] = v;
  ns["metadata"]["labels"] = std::move(l);
  if (!annotations.empty()) {
    json a = json::object();
    for (const auto& [k, v] : annotations) a[k] = v;
    ns["metadata"]["annotations"] = std::move(a);
  }
  return ns;
}

std::optional<json> BuildResourceQuota(const NamespaceSettings& settings) {
  if (settings.quota.empty()) return std::nullopt;
  json hard = json::object();
  for (const auto& [k, v] : settings.quota) hard[k] = v;
  return json{{"apiVersion", "v1"},
              {"kind", "ResourceQuota"},
              {"metadata", {{"name", "eph-quota"}}},
              {"spec", {{"hard", hard}}}};
}

std::optional<json> BuildLimitRange(const NamespaceSettings& settings) {
  if (settings.default_limits.empty() && settings.default_requests.empty()) return std::nullopt;
  json limit = {{"type", "Container"}};
  if (!settings.default_limits.empty()) {
    json d = json::object();
    for (const auto& [k, v] : settings.default_limits) d[k] = v;
    limit["default"] = std::move(d);
  }
  if (!settings.default_requests.empty()) {
    json d = json::object();
    for (const auto& [k, v] : settings.default_requests) d[k] = v;
    limit["defaultRequest"] = std::move(d);
  }
  return json{{"apiVersion", "v1"},
              {"kind", "LimitRange"},
              {"metadata", {{"name", "eph-limits"}}},
              {"spec", {{"limits", json::array({limit})}}}};
}

std::optional<json> BuildNetworkPolicy(const NamespaceSettings& settings) {
  if (!settings.network_policy) return std::nullopt;
  json from = json::array({json{{"podSelector", json::object()}}});
  if (!settings.ingress_namespace_labels.empty()) {
    json match = json::object();
    for (const auto& [k, v] : settings.ingress_namespace_labels) match[k] = v;
    from.push_back({{"namespaceSelector", {{"matchLabels", match}}}});
  }
  return json{{"apiVersion", "networking.k8s.io/v1"},
              {"kind", "NetworkPolicy"},
              {"metadata", {{"name", "eph-isolation"}}},
              {"spec",
               {{"podSelector", json::object()},
                {"policyTypes", json::array({"Ingress"})},
                {"ingress", json::array({json{{"from", from}}})}}}};
}

std::map<std::string, std::string> NamespaceLabels(std::map<std::string, std::string> labels,
                                                   bool restricted) {
  if (restricted) {
    for (const char* mode : {"enforce", "warn", "audit"}) {
      labels[std::string("pod-security.kubernetes.io/") + mode] = "restricted";
    }
  }
  return labels;
}

std::optional<json> BuildRestrictedEgressPolicy(bool restricted) {
  if (!restricted) return std::nullopt;
  json dns_ports = json::array();
  for (const char* protocol : {"UDP", "TCP"}) {
    dns_ports.push_back({{"protocol", protocol}, {"port", 53}});
  }
  return json{{"apiVersion", "networking.k8s.io/v1"},
              {"kind", "NetworkPolicy"},
              {"metadata", {{"name", "eph-restricted-egress"}}},
              {"spec",
               {{"podSelector", json::object()},
                {"policyTypes", json::array({"Egress"})},
                {"egress", json::array({json{{"ports", dns_ports}}})}}}};
}

bool QuotaEnforced(const json& quota) {
  // The API server writes spec and status in canonical quantities: they compare as strings.
  const json* hard = Child(quota, {"spec", "hard"});
  if (hard == nullptr) return true;
  const json* counted = Child(quota, {"status", "hard"});
  const json* used = Child(quota, {"status", "used"});
  if (counted == nullptr || used == nullptr) return hard->empty();
  for (auto it = hard->begin(); it != hard->end(); ++it) {
    const auto limit = counted->find(it.key());
    if (limit == counted->end() || *limit != it.value() || !used->contains(it.key())) return false;
  }
  return true;
}

void AddEphLabels(json& object, const std::map<std::string, std::string>& labels) {
  if (!object.is_object()) return;
  MergeLabels(object, labels);
  const std::string kind = Str(object, "kind");
  if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
      kind == "ReplicaSet" || kind == "ReplicationController" || kind == "Job") {
    if (json* spec = Child(object, {"spec"}); spec != nullptr) {
      json& tmpl = (*spec)["template"];
      if (!tmpl.is_object()) tmpl = json::object();
      MergeLabels(tmpl, labels);
    }
  } else if (kind == "CronJob") {
    if (json* spec = Child(object, {"spec"}); spec != nullptr) {
      json& job = (*spec)["jobTemplate"];
      if (!job.is_object()) job = json::object();
      MergeLabels(job, labels);
      json& job_spec = job["spec"];
      if (!job_spec.is_object()) job_spec = json::object();
      json& tmpl = job_spec["template"];
      if (!tmpl.is_object()) tmpl = json::object();
      MergeLabels(tmpl, labels);
    }
  }
}

std::optional<json> BuildEnvSecret(const std::map<std::string, std::string>& values) {
  if (values.empty()) return std::nullopt;
  json data = json::object();
  for (const auto& [key, value] : values) data[key] = value;
  return json{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata", {{"name", kEnvSecretName}}},
              {"type", "Opaque"},
              {"stringData", data}};
}

std::optional<json> BuildPullSecret(const std::string& docker_config_json) {
  if (docker_config_json.empty()) return std::nullopt;
  return json{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata", {{"name", kPullSecretName}}},
              {"type", "kubernetes.io/dockerconfigjson"},
              {"stringData", {{".dockerconfigjson", docker_config_json}}}};
}

void AddPullSecretToServiceAccounts(std::vector<json>& objects) {
  const json ref = {{"name", kPullSecretName}};
  bool has_default = false;
  for (json& object : objects) {
    if (!object.is_object() || Str(object, "kind") != "ServiceAccount" ||
        Str(object, "apiVersion") != "v1") {
      continue;
    }
    if (const json* meta = Child(object, {"metadata"});
        meta != nullptr && Str(*meta, "name") == "default") {
      has_default = true;
    }
    json& secrets = object["imagePullSecrets"];
    if (!secrets.is_array()) secrets = json::array();
    bool present = false;
    for (const json& s : secrets) present = present || s == ref;
    if (!present) secrets.push_back(ref);
  }
  if (!has_default) {
    objects.push_back(json{{"apiVersion", "v1"},
                           {"kind", "ServiceAccount"},
                           {"metadata", {{"name", "default"}}},
                           {"imagePullSecrets", json::array({ref})}});
  }
}

void AddEnvFrom(json& object) {
  if (!object.is_object()) return;
  const std::string kind = Str(object, "kind");
  json* pod_spec = nullptr;
  if (kind == "Pod") {
    pod_spec = Child(object, {"spec"});
  } else if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
             kind == "ReplicaSet" || kind == "ReplicationController" || kind == "Job") {
    pod_spec = Child(object, {"spec", "template", "spec"});
  } else if (kind == "CronJob") {
    pod_spec = Child(object, {"spec", "jobTemplate", "spec", "template", "spec"});
  }
  if (pod_spec == nullptr) return;
  const json ref = {{"secretRef", {{"name", kEnvSecretName}}}};
  for (const char* list : {"containers", "initContainers"}) {
    auto containers = pod_spec->find(list);
    if (containers == pod_spec->end() || !containers->is_array()) continue;
    for (json& container : *containers) {
      if (!container.is_object()) continue;
      json& env_from = container["envFrom"];
      if (!env_from.is_array()) env_from = json::array();
      bool present = false;
      for (const json& e : env_from) present = present || e == ref;
      if (!present) env_from.push_back(ref);
    }
  }
}

namespace {

const json* ServicePorts(const json& o) {
  if (Str(o, "kind") != "Service" || Str(o, "apiVersion") != "v1") return nullptr;
  const auto spec = o.find("spec");
  if (spec == o.end() || !spec->is_object()) return nullptr;
  const auto ports = spec->find("ports");
  if (ports == spec->end() || !ports->is_array() || ports->empty()) return nullptr;
  return &*ports;
}

std::string ServiceName(const json& o) {
  const auto meta = o.find("metadata");
  return meta == o.end() ? std::string() : Str(*meta, "name");
}

int PortNumber(const json& port) {
  const auto it = port.is_object() ? port.find("port") : port.end();
  return it != port.end() && it->is_number_integer() ? it->get<int>() : 0;
}

bool HttpLooking(const json& port) {
  static const std::set<std::string> kNames = {"http", "https", "web"};
  static const std::set<int> kNumbers = {80,   443,  3000, 4200, 5000, 8000,
                                         8008, 8080, 8081, 8443, 8888};
  const std::string name = Str(port, "name");
  return kNames.count(name) > 0 || name.rfind("http-", 0) == 0 ||
         kNumbers.count(PortNumber(port)) > 0;
}

// An Ingress backend port: by name when the Service names it (stable if the number changes).
std::optional<json> BackendPort(const json& port) {
  if (!Str(port, "name").empty()) return json{{"name", Str(port, "name")}};
  if (PortNumber(port) > 0) return json{{"number", PortNumber(port)}};
  return std::nullopt;
}

std::optional<EntryService> Entry(const json& service, const std::string& why) {
  const json& ports = *ServicePorts(service);
  for (const json& port : ports) {
    if (!HttpLooking(port)) continue;
    if (std::optional<json> backend = BackendPort(port)) {
      return EntryService{ServiceName(service), *backend, why};
    }
  }
  std::optional<json> backend = BackendPort(ports[0]);
  if (!backend) return std::nullopt;
  return EntryService{ServiceName(service), *backend, why};
}

absl::StatusOr<EntryService> ConfiguredEntry(const std::vector<const json*>& services,
                                             const IngressSettings& settings) {
  std::string names;
  for (const json* s : services) {
    if (ServiceName(*s) != settings.web_service) {
      names += (names.empty() ? "" : ", ") + ServiceName(*s);
      continue;
    }
    std::string ports;
    for (const json& port : *ServicePorts(*s)) {
      if (PortNumber(port) == settings.web_port) {
        return EntryService{settings.web_service, json{{"number", settings.web_port}},
                            "kubernetes.web"};
      }
      ports += fmt::format("{}{}", ports.empty() ? "" : ", ", PortNumber(port));
    }
    return absl::InvalidArgumentError(fmt::format(
        "eph.yaml kubernetes.web: Service {} has no port {} (its ports: {})",
        settings.web_service, settings.web_port, ports));
  }
  return absl::InvalidArgumentError(fmt::format(
      "eph.yaml kubernetes.web: the manifests have no Service named {} with a port (Services: "
      "{})",
      settings.web_service, names.empty() ? "none" : names));
}

json EphIngress(const EntryService& entry, const IngressSettings& settings) {
  json path = {{"path", "/"},
               {"pathType", "Prefix"},
               {"backend", {{"service", {{"name", entry.service}, {"port", entry.port}}}}}};
  json rule = {{"host", settings.host}, {"http", {{"paths", json::array({path})}}}};
  json ingress = {{"apiVersion", "networking.k8s.io/v1"},
                  {"kind", "Ingress"},
                  {"metadata", {{"name", "eph-" + entry.service}}},
                  {"spec", {{"rules", json::array({rule})}}}};
  if (!settings.ingress_class.empty()) {
    ingress["spec"]["ingressClassName"] = settings.ingress_class;
  }
  return ingress;
}

}  // namespace

absl::StatusOr<std::optional<EntryService>> ChooseEntryService(const std::vector<json>& objects,
                                                               const IngressSettings& settings) {
  std::vector<const json*> services;
  for (const json& o : objects) {
    if (ServicePorts(o) != nullptr) services.push_back(&o);
  }
  if (!settings.web_service.empty()) {
    absl::StatusOr<EntryService> entry = ConfiguredEntry(services, settings);
    if (!entry.ok()) return entry.status();
    return std::optional<EntryService>(*std::move(entry));
  }
  std::vector<std::pair<std::string, std::string>> wanted;
  for (const std::string& name : settings.project_names) {
    if (!name.empty()) wanted.emplace_back(name, "named like the project");
  }
  wanted.emplace_back("web", "named web");
  wanted.emplace_back("frontend", "named frontend");
  for (const auto& [name, why] : wanted) {
    for (const json* s : services) {
      if (ServiceName(*s) != name) continue;
      if (std::optional<EntryService> entry = Entry(*s, why)) return entry;
    }
  }
  for (const json* s : services) {
    if (std::none_of((*ServicePorts(*s)).begin(), (*ServicePorts(*s)).end(), HttpLooking)) {
      continue;
    }
    if (std::optional<EntryService> entry = Entry(*s, "the first Service with an HTTP port")) {
      return entry;
    }
  }
  for (const json* s : services) {
    if (std::optional<EntryService> entry = Entry(*s, "the first Service")) return entry;
  }
  return std::optional<EntryService>();
}

absl::Status ConfigureIngress(std::vector<json>& objects, const IngressSettings& settings) {
  // Checked even without a host: a kubernetes.web that names nothing is wrong everywhere.
  absl::StatusOr<std::optional<EntryService>> entry = ChooseEntryService(objects, settings);
  if (!entry.ok()) return entry.status();
  if (settings.host.empty()) return absl::OkStatus();
  const std::string annotation = settings.tls_issuer_kind == "Issuer"
                                     ? "cert-manager.io/issuer"
                                     : "cert-manager.io/cluster-issuer";
  auto add_tls = [&](json& ingress) {
    if (settings.tls_issuer.empty()) return;
    json& meta = ingress["metadata"];
    if (!meta["annotations"].is_object()) meta["annotations"] = json::object();
    meta["annotations"][annotation] = settings.tls_issuer;
    json& spec = ingress["spec"];
    json& tls = spec["tls"];
    if (!tls.is_array() || tls.empty()) {
      tls = json::array({json{{"hosts", json::array({settings.host})},
                              {"secretName", Str(meta, "name") + "-tls"}}});
    }
  };
  bool has_ingress = false;
  for (json& o : objects) {
    if (Str(o, "kind") != "Ingress") continue;
    has_ingress = true;
    SetIngressHost(o, settings.host);
    add_tls(o);
  }
  if (has_ingress || !entry->has_value()) return absl::OkStatus();
  json ingress = EphIngress(**entry, settings);
  add_tls(ingress);
  objects.push_back(std::move(ingress));
  return absl::OkStatus();
}

std::string KindKey(const json& object) {
  return Str(object, "apiVersion") + "/" + Str(object, "kind");
}

std::string ObjectId(const json& object) {
  const json meta = object.is_object() ? object.value("metadata", json::object()) : json();
  return KindKey(object) + " " + Str(meta, "name");
}

}  // namespace eph::providers::kubernetes
