#include "pkg/providers/docker/container_spec.h"

#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/base/sha256.h"

namespace eph::providers::docker {

using nlohmann::json;

std::string NetworkName(std::string_view project) { return fmt::format("{}_default", project); }

std::string VolumeName(std::string_view project, std::string_view volume) {
  return fmt::format("{}_{}", project, volume);
}

std::string ContainerName(std::string_view project, std::string_view service) {
  return fmt::format("{}-{}-1", project, service);
}

std::string ImageName(std::string_view reference) {
  if (const size_t at = reference.find('@'); at != std::string_view::npos) {
    reference = reference.substr(0, at);
  }
  const size_t slash = reference.rfind('/');
  const size_t colon = reference.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    reference = reference.substr(0, colon);
  }
  return std::string(reference);
}

std::string ResolveImage(std::string_view reference, const std::vector<ImageTag>& images) {
  const std::string name = ImageName(reference);
  for (const ImageTag& image : images) {
    if (image.name == name && !image.tag.empty()) return name + ":" + image.tag;
  }
  return std::string(reference);
}

namespace {

// What a service sets only when the compose file says so; left out otherwise, so that the config
// hash of a service that uses none of it is what it was before these keys existed.
void AddOptional(const ComposeService& s, json& body) {
  if (!s.user.empty()) body["User"] = s.user;
  if (!s.working_dir.empty()) body["WorkingDir"] = s.working_dir;
  json& host = body["HostConfig"];
  if (s.nano_cpus > 0) host["NanoCpus"] = s.nano_cpus;
  if (s.memory_bytes > 0) host["Memory"] = s.memory_bytes;
  if (s.memory_reservation_bytes > 0) host["MemoryReservation"] = s.memory_reservation_bytes;
  if (s.pids_limit > 0) host["PidsLimit"] = s.pids_limit;
  if (s.restart_max_retries > 0) host["RestartPolicy"]["MaximumRetryCount"] = s.restart_max_retries;
}

}  // namespace

json ContainerCreateBody(const ServicePlan& plan) {
  const ComposeService& s = *plan.service;
  json labels = json::object();
  for (const auto& [k, v] : s.labels) labels[k] = v;
  for (const auto& [k, v] : plan.labels) labels[k] = v;
  labels[kProjectLabel] = plan.project;
  labels[kServiceLabel] = s.name;
  labels["com.docker.compose.container-number"] = "1";
  if (plan.web_port != 0) labels[kWebPortLabel] = std::to_string(plan.web_port);

  json exposed = json::object();
  json bindings = json::object();
  auto publish = [&](int container_port, const std::string& protocol, int host_port) {
    const std::string key = fmt::format("{}/{}", container_port, protocol);
    exposed[key] = json::object();
    json binding = {{"HostIp", "127.0.0.1"},
                    {"HostPort", plan.fixed_host_ports && host_port != 0 ? std::to_string(host_port)
                                                                         : std::string()}};
    bindings[key].push_back(binding);
  };
  bool web_listed = plan.web_port == 0;
  for (const PortMapping& p : s.ports) {
    publish(p.container_port, p.protocol, p.host_port);
    web_listed = web_listed || (p.protocol == "tcp" && p.container_port == plan.web_port);
  }
  if (!web_listed) publish(plan.web_port, "tcp", 0);

  // `expose`: reachable on the environment's network, never published on the host.
  for (const PortMapping& p : s.expose) {
    exposed[fmt::format("{}/{}", p.container_port, p.protocol)] = json::object();
  }

  json mounts = json::array();
  for (const VolumeMount& m : s.volumes) {
    // An anonymous volume (no Source) is created by the engine and removed with the container.
    json mount = {{"Type", "volume"}, {"Target", m.target}, {"ReadOnly", m.read_only}};
    if (!m.volume.empty()) mount["Source"] = VolumeName(plan.project, m.volume);
    mounts.push_back(std::move(mount));
  }
  const std::string network = NetworkName(plan.project);
  // The service name first, then container_name and the networks' aliases: all on the
  // environment's own network, so they cannot collide with another environment's.
  json aliases = json::array({s.name});
  for (const std::string& a : s.aliases) aliases.push_back(a);
  std::vector<std::string> env;
  for (const std::string& kv : s.environment) {
    if (plan.secret_env.count(kv.substr(0, kv.find('='))) == 0) env.push_back(kv);
  }
  for (const auto& [key, value] : plan.secret_env) env.push_back(key + "=" + value);
  json body = {
      {"Image", plan.image},
      {"Env", env},
      {"Labels", labels},
      {"ExposedPorts", exposed},
      {"HostConfig",
       {{"NetworkMode", network},
        {"PortBindings", bindings},
        {"Mounts", mounts},
        {"RestartPolicy", {{"Name", s.restart}}}}},
      {"NetworkingConfig", {{"EndpointsConfig", {{network, {{"Aliases", aliases}}}}}}},
  };
  AddOptional(s, body);
  if (s.command) body["Cmd"] = *s.command;
  if (s.entrypoint) body["Entrypoint"] = *s.entrypoint;
  if (s.healthcheck) {
    const HealthCheck& h = *s.healthcheck;
    json hc = {{"Test", h.test}};
    auto ns = [](absl::Duration d) { return absl::ToInt64Nanoseconds(d); };
    if (h.interval != absl::ZeroDuration()) hc["Interval"] = ns(h.interval);
    if (h.timeout != absl::ZeroDuration()) hc["Timeout"] = ns(h.timeout);
    if (h.start_period != absl::ZeroDuration()) hc["StartPeriod"] = ns(h.start_period);
    if (h.start_interval != absl::ZeroDuration()) {
      hc["StartInterval"] = ns(h.start_interval);
      body["Labels"][kStartIntervalLabel] = std::to_string(ns(h.start_interval));
    }
    if (h.retries != 0) hc["Retries"] = h.retries;
    body["Healthcheck"] = std::move(hc);
  }
  return body;
}

std::string ConfigHash(const json& create_body, std::string_view image_id) {
  // nlohmann::json keeps object keys sorted, so dump() is canonical.
  const std::string text = create_body.dump() + "\n" + std::string(image_id);
  return Sha256Hex(text);
}

}  // namespace eph::providers::docker
