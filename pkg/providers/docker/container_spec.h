// What the Docker provider asks the engine for, as pure functions of the compose file and the
// request: resolved image references, the POST /containers/create body of each service, and the
// config hash that decides whether a running container is kept or replaced.
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "pkg/providers/docker/compose_file.h"
#include "pkg/providers/provider.h"

namespace eph::providers::docker {

inline constexpr char kConfigHashLabel[] = "eph.dev/config-hash";
// On the web service's container only: the container port the gateway's URL points at.
inline constexpr char kWebPortLabel[] = "eph.dev/web-port";
inline constexpr char kProjectLabel[] = "com.docker.compose.project";
inline constexpr char kServiceLabel[] = "com.docker.compose.service";
// On the environment's own database server container: the database instance's name.
inline constexpr char kDatabaseLabel[] = "eph.dev/database";
// The healthcheck's start_interval in nanoseconds, on containers whose compose service sets it:
// an engine before API 1.44 drops Healthcheck.StartInterval, and Eph's emulation
// (start_probe.h) reads it from here.
inline constexpr char kStartIntervalLabel[] = "eph.dev/start-interval";

// Names of what one environment's compose project consists of.
std::string NetworkName(std::string_view project);                              // <p>_default
std::string VolumeName(std::string_view project, std::string_view volume);      // <p>_<v>
std::string ContainerName(std::string_view project, std::string_view service);  // <p>-<s>-1

// "repo/name:tag" -> "repo/name". Keeps a registry port ("host:5000/name"); drops a digest.
std::string ImageName(std::string_view reference);
// The reference with the tag of images[] whose name matches, else unchanged.
std::string ResolveImage(std::string_view reference, const std::vector<ImageTag>& images);

struct ServicePlan {
  const ComposeService* service = nullptr;
  std::string image;     // resolved reference
  std::string image_id;  // sha256:... of the local image
  int web_port = 0;      // nonzero on the web service: this port is published even if unlisted
  bool fixed_host_ports = false;
  std::string project;
  std::map<std::string, std::string> labels;  // the request's labels (Eph's included)
  // ApplyRequest::secret_env (the database's settings, eph.yaml's variables and secrets): added
  // to the service's environment, replacing a variable of the same name. Secret: never in
  // messages.
  std::map<std::string, std::string> secret_env;
};

// The create body, without the config-hash label.
nlohmann::json ContainerCreateBody(const ServicePlan& plan);

// Hex SHA-256 over the canonical create body and the image ID: a changed tag, a rebuilt image
// under the same tag, or any compose change gives a new hash.
std::string ConfigHash(const nlohmann::json& create_body, std::string_view image_id);

}  // namespace eph::providers::docker
