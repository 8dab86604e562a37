#include "pkg/providers/docker/docker_provider.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/base/random.h"
#include "pkg/config/duration.h"
#include "pkg/config/source_checks.h"
#include "pkg/providers/docker/compose_file.h"
#include "pkg/providers/docker/container_spec.h"
#include "pkg/providers/docker/image_pull.h"
#include "pkg/providers/docker/log_stream.h"

namespace eph::providers::docker {
namespace {

using nlohmann::json;

constexpr char kVersion[] =
    "0.1.0 (Engine API "
    "v1.41"
    ", compose subset)";

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// o[key], or null when `o` is not an object or lacks the key (never throws, unlike value()).
json Field(const json& o, const char* key) {
  if (!o.is_object()) return json();
  const auto it = o.find(key);
  return it == o.end() ? json() : *it;
}

// The superuser of an environment's own database server (EnsureDatabaseServer).
constexpr char kDatabaseAdminUser[] = "eph_admin";

int64_t IntField(const json& o, const char* key) {
  const json v = Field(o, key);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

json Array(const json& v) { return v.is_array() ? v : json::array(); }

std::string LabelOf(const json& labels, const char* key) { return Str(labels, key); }

OwnedObject OwnedFrom(const char* kind, std::string name, const json& labels) {
  return {kind, std::move(name), "", LabelOf(labels, kEnvironmentLabel),
          LabelOf(labels, kInstallationLabel)};
}

json Parse(const EngineResponse& r) { return json::parse(r.body, nullptr, false); }

std::string EnvFilter(const std::string& environment, const std::string& extra = "") {
  json labels = json::array({fmt::format("{}={}", kManagedByLabel, kManagedByValue)});
  if (!environment.empty()) labels.push_back(fmt::format("{}={}", kEnvironmentLabel, environment));
  if (!extra.empty()) labels.push_back(extra);
  return UrlEncode(json({{"label", labels}}).dump());
}

// True if the labels say the object belongs to `environment` and Eph.
// Eph's object of `environment`, made by this installation (or by an unstamped one).
bool Owns(const json& labels, const std::string& environment, const std::string& installation) {
  const std::string theirs = LabelOf(labels, kInstallationLabel);
  return LabelOf(labels, kManagedByLabel) == kManagedByValue &&
         LabelOf(labels, kEnvironmentLabel) == environment &&
         (installation.empty() || theirs.empty() || theirs == installation);
}

std::string InstallationOf(const std::map<std::string, std::string>& labels) {
  const auto it = labels.find(kInstallationLabel);
  return it == labels.end() ? "" : it->second;
}

std::string ProjectOf(const std::string& namespace_name, const std::string& environment) {
  return namespace_name.empty() ? "eph-" + environment : namespace_name;
}

// The compose file's path must stay inside the repository; eph-compose checks the rest (symbolic
// links, and every file the compose file names).
absl::Status CheckComposePath(const ApplyRequest& request, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path rel(path);
  for (const auto& part : rel) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          fmt::format("eph.yaml: docker.compose_file `{}` leaves the repository", path));
    }
  }
  if (rel.is_absolute() || path.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("eph.yaml: docker.compose_file `{}` must be relative to the repository", path));
  }
  std::error_code ec;
  const bool found =
      request.source_dir.empty()
          ? std::any_of(request.sources.begin(), request.sources.end(),
                        [&](const SourceFile& f) {
                          return fs::path(f.path).lexically_normal() == rel.lexically_normal();
                        })
          : fs::is_regular_file(fs::path(request.source_dir) / rel, ec);
  if (request.source_dir.empty() && request.sources.empty()) {
    return absl::FailedPreconditionError(
        "the Docker provider got no repository files (neither source_dir nor sources)");
  }
  if (!found) {
    return absl::FailedPreconditionError(fmt::format(
        "compose file `{}` (docker.compose_file in eph.yaml) is not in the repository at {}", path,
        request.head_sha.empty() ? "this commit" : request.head_sha.substr(0, 7)));
  }
  // Refused before loading: neither eph-compose nor the position lookup need to read a file this
  // size (eph.yaml's limit; real compose files are a few kilobytes).
  uintmax_t size = 0;
  if (!request.source_dir.empty()) size = fs::file_size(fs::path(request.source_dir) / rel, ec);
  for (const SourceFile& f : request.sources) {
    if (fs::path(f.path).lexically_normal() == rel.lexically_normal()) size = f.content.size();
  }
  if (!ec && size > config::kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        fmt::format("{}: the file is {} bytes; a compose file may be at most {} bytes", path, size,
                    config::kMaxConfigBytes));
  }
  return absl::OkStatus();
}

// The container's last few log lines, for failure messages ("" if unavailable).
std::string LastLogLines(const EngineClient& engine, const std::string& id, int lines) {
  absl::StatusOr<EngineResponse> r =
      engine.Get(fmt::format("/containers/{}/logs?stdout=1&stderr=1&tail={}", id, lines));
  if (!r.ok() || r->status != 200) return "";
  LogDemuxer demux;
  std::vector<std::string> out;
  auto keep = [&](int, std::string_view line) {
    if (!line.empty()) out.emplace_back(line);
    return true;
  };
  demux.Feed(r->body, keep);
  demux.Finish(keep);
  std::string text;
  for (const std::string& l : out) text += (text.empty() ? "" : " | ") + l;
  if (text.size() > 500) text = "..." + text.substr(text.size() - 500);
  return text;
}

// The ID of `image` on the engine; a missing image is FailedPrecondition naming `what` needs it
// and `hint` for what to do. Used after any pull: it never pulls itself.
absl::StatusOr<std::string> LocalImageId(const EngineClient& engine, const std::string& image,
                                         const std::string& what, const std::string& hint) {
  absl::StatusOr<EngineResponse> r = engine.Get(fmt::format("/images/{}/json", UrlEncode(image)));
  if (!r.ok()) return r.status();
  if (r->status == 404) {
    return absl::FailedPreconditionError(
        hint.empty()
            ? fmt::format("image {} not found on the Docker host ({})", image, what)
            : fmt::format("image {} not found on the Docker host ({}): {}", image, what, hint));
  }
  if (r->status != 200) return ErrorFromResponse(*r, "inspecting image " + image);
  return Str(Parse(*r), "Id");
}

std::string HealthOutput(const json& health) {
  const json log = Array(Field(health, "Log"));
  if (!log.is_array() || log.empty()) return "";
  const json& last = log.back();
  std::string output = Str(last, "Output");
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  const int64_t code = IntField(last, "ExitCode");
  if (output.empty()) return fmt::format("last check exited with {}", code);
  return fmt::format("last check exited with {}: {}", code, output);
}

// Whether the container of `dependency` satisfies a depends_on `condition` (service_healthy or
// service_completed_successfully) now, as `docker compose up` requires before it starts the
// dependent service: true, false (not yet), or FailedPrecondition once it cannot (unhealthy,
// exited, no healthcheck, or still not there `timeout` after it started, measured on `now`).
// One inspection, no waiting: Apply leaves the dependant for a later pass.
absl::StatusOr<bool> DependencyMet(const EngineClient& engine, const std::string& project,
                                   const std::string& service, const std::string& dependency,
                                   const std::string& condition, absl::Duration timeout,
                                   TimePoint now) {
  const bool healthy = condition == "service_healthy";
  const std::string wanted = healthy ? "healthy" : "completed successfully";
  const std::string name = ContainerName(project, dependency);
  auto fail = [&](const std::string& why) {
    return absl::FailedPreconditionError(
        fmt::format("service `{}` waits for `{}` to be {} (depends_on), but {}", service,
                    dependency, wanted, why));
  };
  absl::StatusOr<EngineResponse> r = engine.Get(fmt::format("/containers/{}/json", name));
  if (!r.ok()) return r.status();
  if (r->status != 200) return ErrorFromResponse(*r, "inspecting " + name);
  const json c = Parse(*r);
  const json state = Field(c, "State");
  const std::string status = Str(state, "Status");
  const json health = Field(state, "Health");
  const int64_t code = IntField(state, "ExitCode");
  if (healthy) {
    if (Field(Field(c, "Config"), "Healthcheck").is_null() && health.is_null()) {
      return fail("it has no healthcheck");
    }
    const std::string h = Str(health, "Status");
    if (status == "running" && h == "healthy") return true;
    if (h == "unhealthy") return fail(fmt::format("it is unhealthy ({})", HealthOutput(health)));
    if (status == "exited" || status == "dead") {
      return fail(fmt::format("it exited with code {}", code));
    }
  } else if (status == "exited" || status == "dead") {
    if (code == 0) return true;
    return fail(fmt::format("it exited with code {}", code));
  }
  absl::Time started;
  std::string err;
  if (status == "running" &&
      absl::ParseTime(absl::RFC3339_full, Str(state, "StartedAt"), &started, &err) &&
      absl::FromChrono(now) - started > timeout) {
    return fail(fmt::format("it was not within {}", config::DurationString(timeout)));
  }
  return false;
}

// The compose file named by the `docker:` section, loaded by compose-go with the variables
// compose files may interpolate (${EPH_PR_NUMBER}, ${EPH_SHORT_SHA:-dev}, ...) and checked
// against the preview policy.
absl::StatusOr<ComposeFile> LoadCompose(const ApplyRequest& request, const DockerSection& section,
                                        const ComposeLoaderOptions& loader) {
  if (absl::Status s = CheckComposePath(request, section.compose_file); !s.ok()) return s;
  ComposeProjectSource source;
  source.files = {section.compose_file};
  source.variables = {
      {"EPH_ENVIRONMENT", request.environment},
      {"EPH_PROJECT", request.project},
      {"EPH_PR_NUMBER", request.pr_number > 0 ? std::to_string(request.pr_number) : ""},
      {"EPH_HEAD_SHA", request.head_sha},
      {"EPH_SHORT_SHA", request.head_sha.substr(0, 7)},
      {"EPH_HOST", request.host}};
  return LoadComposeProject(request, std::move(source), loader);
}

struct WebTarget {
  const ComposeService* service = nullptr;  // null: no service publishes a port
  int port = 0;
};

// The web service and port the URL points at: docker.web of eph.yaml, or the first service
// publishing a port, and its first tcp port.
absl::StatusOr<WebTarget> FindWeb(const ComposeFile& compose, const DockerSection& section) {
  WebTarget web{nullptr, section.web_port};
  if (!section.web_service.empty()) {
    web.service = compose.Find(section.web_service);
    if (web.service == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("eph.yaml: docker.web.service `{}` is not a service of {}",
                      section.web_service, section.compose_file));
    }
  } else {
    for (const ComposeService& s : compose.services) {
      if (!s.ports.empty()) {
        web.service = &s;
        break;
      }
    }
  }
  if (web.service == nullptr || web.port != 0) return web;
  for (const PortMapping& p : web.service->ports) {
    if (p.protocol == "tcp") {
      web.port = p.container_port;
      return web;
    }
  }
  return absl::InvalidArgumentError(
      fmt::format("service `{}` of {} publishes no tcp port: add one to its `ports` or set "
                  "docker.web.port in eph.yaml",
                  web.service->name, section.compose_file));
}

}  // namespace

absl::StatusOr<DockerProviderOptions> ParseDockerSettings(const ProviderSettings& settings) {
  DockerProviderOptions out;
  std::string host = kDefaultDockerHost;
  auto duration_ms = [](const std::string& key,
                        const std::string& value) -> absl::StatusOr<std::chrono::milliseconds> {
    absl::StatusOr<absl::Duration> d = config::ParseDuration(value);
    if (!d.ok() || *d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(fmt::format(
          "Docker provider setting {}: `{}` is not a positive duration such as 30s", key, value));
    }
    return std::chrono::milliseconds(absl::ToInt64Milliseconds(*d));
  };
  for (const auto& [key, value] : settings.values) {
    if (key == "docker_host") {
      if (!value.empty()) host = value;
    } else if (key == "request_timeout" || key == "connect_timeout" || key == "health_timeout") {
      absl::StatusOr<std::chrono::milliseconds> ms = duration_ms(key, value);
      if (!ms.ok()) return ms.status();
      if (key == "request_timeout") out.engine.request_timeout = *ms;
      if (key == "connect_timeout") out.engine.connect_timeout = *ms;
      if (key == "health_timeout") out.health_timeout = absl::Milliseconds(ms->count());
    } else if (key == "log_tail_lines") {
      int64_t n = 0;
      bool ok = !value.empty() && value.size() < 10;
      for (const char c : value) ok = ok && std::isdigit(static_cast<unsigned char>(c)) != 0;
      if (ok) n = std::stoll(value);
      if (!ok || n <= 0) {
        return absl::InvalidArgumentError(fmt::format(
            "Docker provider setting log_tail_lines: `{}` is not a positive number", value));
      }
      out.log_tail_lines = n;
    } else if (key == "fixed_host_ports") {
      if (value == "true") {
        out.fixed_host_ports = true;
      } else if (value == "false" || value.empty()) {
        out.fixed_host_ports = false;
      } else {
        return absl::InvalidArgumentError(fmt::format(
            "Docker provider setting fixed_host_ports: `{}` is not true or false", value));
      }
    } else if (key == "registry_auth_file") {
      if (!value.empty()) {
        absl::StatusOr<RegistryAuth> auth = LoadRegistryAuthFile(value);
        if (!auth.ok()) return auth.status();
        out.registry_auth = *std::move(auth);
      }
    } else if (key == "compose_path") {
      out.compose.compose_path = value;
    } else if (key == "base_domain") {
      // Shared by all providers; the gateway, not this provider, serves the host.
    } else {
      return absl::InvalidArgumentError(
          fmt::format("unknown Docker provider setting `{}` (known: docker_host, request_timeout, "
                      "connect_timeout, health_timeout, log_tail_lines, fixed_host_ports, "
                      "registry_auth_file, compose_path)",
                      key));
    }
  }
  absl::StatusOr<std::string> socket = SocketPathFromHost(host);
  if (!socket.ok()) return socket.status();
  out.engine.socket_path = *socket;
  return out;
}

absl::StatusOr<DockerSection> ParseDockerSection(const std::string& config_json) {
  json doc = json::parse(config_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("the Docker provider's configuration is not a JSON object");
  }
  if (doc.contains("docker")) doc = doc["docker"];
  if (!doc.is_object()) return absl::InvalidArgumentError("eph.yaml: `docker` is not a mapping");
  DockerSection out;
  if (doc.contains("compose_file")) {
    if (!doc["compose_file"].is_string()) {
      return absl::InvalidArgumentError("eph.yaml: docker.compose_file is not a string");
    }
    out.compose_file = doc["compose_file"].get<std::string>();
  }
  if (doc.contains("web") && !doc["web"].is_null()) {
    const json& web = doc["web"];
    if (!web.is_object() || !web.contains("service") || !web["service"].is_string()) {
      return absl::InvalidArgumentError("eph.yaml: docker.web needs a `service`");
    }
    out.web_service = web["service"].get<std::string>();
    if (web.contains("port")) {
      if (!web["port"].is_number_integer() || web["port"].get<int64_t>() < 1 ||
          web["port"].get<int64_t>() > 65535) {
        return absl::InvalidArgumentError("eph.yaml: docker.web.port is not a port number");
      }
      out.web_port = web["port"].get<int>();
    }
  }
  return out;
}

DockerProvider::DockerProvider(DockerProviderOptions options)
    : options_(std::move(options)),
      engine_(options_.engine),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      start_prober_(std::make_unique<StartProber>(
          clock_, [this](const StartProbe& probe) { return ExecCheck(engine_, probe); },
          StartProber::Options{.background = options_.start_probe_thread})) {}

ProviderInfo DockerProvider::Info() const { return {kProviderName, kVersion}; }

// One Apply: what it plans, what it found, what it made (removed again if it fails) and what it
// left for a later pass.
struct DockerProvider::ApplyState {
  explicit ApplyState(const ApplyRequest& r) : request(r) {}
  const ApplyRequest& request;
  std::string project;
  std::string installation;
  DockerSection section;
  ComposeFile compose;
  std::map<std::string, std::string> labels;
  std::vector<ServicePlan> plans;        // in start order; point into `compose`
  std::map<std::string, json> existing;  // this environment's containers, by service
  std::vector<std::string> created_containers;
  std::vector<std::string> created_volumes;
  bool created_network = false;
  std::set<std::string> waiting;  // services not started: a dependency is not ready yet
  int kept = 0;
  int replaced = 0;
  int fresh = 0;
  int started = 0;
  int removed = 0;
};

absl::StatusOr<ApplyResult> DockerProvider::Apply(const ApplyRequest& request) {
  if (request.environment.empty()) {
    return absl::InvalidArgumentError("Docker provider: the request names no environment");
  }
  ApplyState st(request);
  if (absl::Status s = Plan(st); !s.ok()) return s;
  if (absl::Status s = ProvisionAndStart(st); !s.ok()) return Rollback(st, s);
  if (absl::Status s = RemoveDroppedServices(st); !s.ok()) return s;
  ApplyResult result;
  result.handle = "compose-project/" + st.project;
  // Observe finds the services by their containers: one removed by hand is noticed.
  for (const ServicePlan& plan : st.plans) result.components.push_back(plan.service->name);
  std::sort(result.components.begin(), result.components.end());
  result.summary = fmt::format("{} services: {} created, {} replaced, {} unchanged",
                               st.plans.size(), st.fresh, st.replaced, st.kept);
  if (st.started > 0) result.summary += fmt::format(", {} started", st.started);
  if (st.removed > 0) result.summary += fmt::format(", {} removed", st.removed);
  if (!st.waiting.empty()) {
    result.needs_reapply = true;
    result.summary += fmt::format(", {} waiting for dependencies", st.waiting.size());
  }
  return result;
}

absl::Status DockerProvider::Plan(ApplyState& st) {
  const ApplyRequest& request = st.request;
  st.project = ProjectOf(request.namespace_name, request.environment);
  st.installation = InstallationOf(request.labels);
  absl::StatusOr<DockerSection> section = ParseDockerSection(request.config_json);
  if (!section.ok()) return section.status();
  st.section = *section;
  absl::StatusOr<ComposeFile> compose = LoadCompose(request, st.section, options_.compose);
  if (!compose.ok()) return compose.status();
  st.compose = *std::move(compose);
  absl::StatusOr<WebTarget> web = FindWeb(st.compose, st.section);
  if (!web.ok()) return web.status();
  st.labels = request.labels;
  st.labels[kManagedByLabel] = kManagedByValue;
  st.labels[kEnvironmentLabel] = request.environment;
  if (absl::Status s = PlanServices(st, web->service, web->port); !s.ok()) return s;
  return FindExisting(st);
}

absl::Status DockerProvider::PlanServices(ApplyState& st, const ComposeService* web, int web_port) {
  // Every image is pulled (as its pull_policy says) and present before anything is created, so
  // a bad reference or a registry that refuses leaves nothing half-made. One image used by
  // several services is pulled once, `always` winning over `missing` over `never`.
  std::vector<std::string> order;
  std::map<std::string, std::string> policy;  // image -> the strongest policy asking for it
  std::map<std::string, std::string> user;    // image -> the first service using it
  auto rank = [](const std::string& p) { return p == "always" ? 2 : p == "missing" ? 1 : 0; };
  for (const ComposeService* s : st.compose.StartOrder()) {
    ServicePlan plan;
    plan.service = s;
    plan.image = ResolveImage(s->image, st.request.images);
    plan.web_port = s == web ? web_port : 0;
    plan.fixed_host_ports = options_.fixed_host_ports;
    plan.project = st.project;
    plan.labels = st.labels;
    plan.secret_env = st.request.secret_env;
    if (policy.count(plan.image) == 0) {
      order.push_back(plan.image);
      user[plan.image] = s->name;
      policy[plan.image] = s->pull_policy;
    } else if (rank(s->pull_policy) > rank(policy[plan.image])) {
      policy[plan.image] = s->pull_policy;
    }
    st.plans.push_back(std::move(plan));
  }
  std::map<std::string, std::string> image_ids;
  for (const std::string& image : order) {
    const std::string what = fmt::format("service `{}`", user[image]);
    if (policy[image] == "always") {
      if (absl::Status s = PullImage(engine_, options_.registry_auth, image); !s.ok()) return s;
    }
    absl::StatusOr<std::string> id = LocalImageId(engine_, image, what, "");
    if (absl::IsFailedPrecondition(id.status())) {
      if (policy[image] == "never") {
        return absl::FailedPreconditionError(fmt::format(
            "image {} not found on the Docker host ({} has pull_policy: never)", image, what));
      }
      if (policy[image] == "missing") {
        if (absl::Status s = PullImage(engine_, options_.registry_auth, image); !s.ok()) return s;
        id = LocalImageId(engine_, image, what, "");
      }
    }
    if (!id.ok()) return id.status();
    image_ids[image] = *id;
  }
  for (ServicePlan& plan : st.plans) plan.image_id = image_ids[plan.image];
  return absl::OkStatus();
}

absl::Status DockerProvider::FindExisting(ApplyState& st) {
  absl::StatusOr<EngineResponse> listed =
      engine_.Get("/containers/json?all=1&filters=" + EnvFilter(st.request.environment));
  if (!listed.ok()) return listed.status();
  if (listed->status != 200) return ErrorFromResponse(*listed, "listing containers");
  for (const json& c : Array(Parse(*listed))) {
    // Another installation's environment of the same name is not ours to replace.
    if (!Owns(Field(c, "Labels"), st.request.environment, st.installation)) continue;
    const std::string service = LabelOf(Field(c, "Labels"), kServiceLabel);
    // The environment's own database server (EnsureDatabaseServer) is not a compose service.
    if (!LabelOf(Field(c, "Labels"), kDatabaseLabel).empty()) {
      if (st.compose.Find(service) != nullptr) {
        return absl::InvalidArgumentError(fmt::format(
            "{} has a service `{}`, the name of the environment's database instance; rename "
            "one of them",
            st.section.compose_file, service));
      }
      continue;
    }
    st.existing[service] = c;
  }
  return absl::OkStatus();
}

absl::Status DockerProvider::ProvisionAndStart(ApplyState& st) {
  if (absl::Status s =
          EnsureNetwork(st.project, st.request.environment, st.labels, st.created_network);
      !s.ok()) {
    return s;
  }
  for (const std::string& v : st.compose.volumes) {
    bool created = false;
    if (absl::Status s = EnsureVolume(st.project, v, st.compose.volume_labels[v],
                                      st.request.environment, st.labels, created);
        !s.ok()) {
      return s;
    }
    if (created) st.created_volumes.push_back(VolumeName(st.project, v));
  }
  // In dependency order: a service whose dependency is not ready is created but not started.
  for (const ServicePlan& plan : st.plans) {
    if (absl::Status s = ApplyService(st, plan); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DockerProvider::ReusableContainer(ApplyState& st,
                                                              const ServicePlan& plan,
                                                              const std::string& hash, bool& done) {
  done = false;
  const auto ex = st.existing.find(plan.service->name);
  if (ex == st.existing.end()) return std::string();
  const json& c = ex->second;
  const std::string id = Str(c, "Id");
  if (LabelOf(Field(c, "Labels"), kConfigHashLabel) == hash) {
    const std::string state = Str(c, "State");
    if (state == "running") {
      done = true;
      return id;
    }
    if (state == "created") return id;  // made by an earlier pass, waiting to start
    if (state == "exited" && plan.web_port == 0) {
      // A one-shot task of this configuration that completed is not run again.
      absl::StatusOr<EngineResponse> r = engine_.Get(fmt::format("/containers/{}/json", id));
      if (!r.ok()) return r.status();
      if (r->status == 200 && IntField(Field(Parse(*r), "State"), "ExitCode") == 0) {
        done = true;
        return id;
      }
    }
  }
  absl::StatusOr<EngineResponse> d = engine_.Delete(fmt::format("/containers/{}?force=1&v=1", id));
  if (!d.ok()) return d.status();
  if (d->status != 204 && d->status != 404) {
    return ErrorFromResponse(*d, "removing the old container of " + plan.service->name);
  }
  ++st.replaced;
  return std::string();
}

absl::Status DockerProvider::ApplyService(ApplyState& st, const ServicePlan& plan) {
  const std::string& service = plan.service->name;
  const std::string name = ContainerName(st.project, service);
  json body = ContainerCreateBody(plan);
  const std::string hash = ConfigHash(body, plan.image_id);
  body["Labels"][kConfigHashLabel] = hash;
  bool done = false;
  absl::StatusOr<std::string> id = ReusableContainer(st, plan, hash, done);
  if (!id.ok()) return id.status();
  if (done) {
    ++st.kept;
    return absl::OkStatus();
  }
  if (id->empty() && st.existing.count(service) == 0) {
    if (absl::Status s = ClaimName(st, name); !s.ok()) return s;
    ++st.fresh;
  }
  const bool reused = !id->empty();
  absl::StatusOr<std::string> waiting_for = WaitingFor(st, plan);
  if (!waiting_for.ok()) return waiting_for.status();
  if (!reused) {
    absl::StatusOr<std::string> version = CreateApiVersion(plan);
    if (!version.ok()) return version.status();
    EngineRequest create{.method = "POST",
                         .path = "/containers/create?name=" + UrlEncode(name),
                         .api_version = *version,
                         .body = body.dump()};
    absl::StatusOr<EngineResponse> c = engine_.Perform(create);
    if (!c.ok()) return c.status();
    if (c->status != 201) {
      absl::Status s = ErrorFromResponse(*c, fmt::format("creating service `{}`", service));
      return absl::IsUnavailable(s) ? absl::FailedPreconditionError(s.message()) : s;
    }
    *id = Str(Parse(*c), "Id");
    st.created_containers.push_back(*id);
  }
  if (!waiting_for->empty()) {
    st.waiting.insert(service);
    return absl::OkStatus();
  }
  absl::StatusOr<EngineResponse> s = engine_.Post(fmt::format("/containers/{}/start", *id), "");
  if (!s.ok()) return s.status();
  if (s->status != 204 && s->status != 304) {
    // Whatever the HTTP code, a container that cannot start (port taken, missing
    // executable) will not start on a retry either.
    return absl::FailedPreconditionError(
        fmt::format("starting service `{}` failed: {}", service, EngineMessage(*s)));
  }
  if (reused) ++st.started;
  return absl::OkStatus();
}

absl::Status DockerProvider::ClaimName(ApplyState& st, const std::string& name) {
  // A container with our name that the label filter did not find is not ours.
  absl::StatusOr<EngineResponse> r = engine_.Get(fmt::format("/containers/{}/json", name));
  if (!r.ok()) return r.status();
  if (r->status != 200) return absl::OkStatus();
  const json c = Parse(*r);
  if (!Owns(Field(Field(c, "Config"), "Labels"), st.request.environment, st.installation)) {
    return absl::FailedPreconditionError(fmt::format(
        "a container named {} exists on the Docker host but is not Eph's environment {}; "
        "remove or rename it",
        name, st.request.environment));
  }
  (void)engine_.Delete(fmt::format("/containers/{}?force=1&v=1", name));
  return absl::OkStatus();
}

absl::StatusOr<std::string> DockerProvider::WaitingFor(const ApplyState& st,
                                                       const ServicePlan& plan) {
  const ComposeService& s = *plan.service;
  for (const std::string& dependency : s.depends_on) {
    if (st.waiting.count(dependency) > 0) return fmt::format("`{}` to start", dependency);
  }
  for (const auto& [dependency, condition] : s.depends_on_condition) {
    if (st.waiting.count(dependency) > 0) return fmt::format("`{}` to start", dependency);
    absl::StatusOr<bool> met = DependencyMet(engine_, st.project, s.name, dependency, condition,
                                             options_.health_timeout, clock_.Now());
    if (!met.ok()) return met.status();
    if (!*met) return fmt::format("`{}` ({})", dependency, condition);
  }
  return std::string();
}

absl::StatusOr<std::string> DockerProvider::CreateApiVersion(const ServicePlan& plan) {
  const std::optional<HealthCheck>& h = plan.service->healthcheck;
  if (!h || h->start_interval == absl::ZeroDuration()) return std::string();
  if (engine_start_interval_.load() == 0) {
    absl::StatusOr<EngineResponse> r = engine_.Get("/version");
    if (!r.ok()) return r.status();
    if (r->status != 200) return ErrorFromResponse(*r, "reading the engine's version");
    const bool keeps = ApiVersionAtLeast(Str(Parse(*r), "ApiVersion"), kStartIntervalApiVersion);
    engine_start_interval_.store(keeps ? 1 : -1);
  }
  return engine_start_interval_.load() > 0 ? std::string(kStartIntervalApiVersion) : std::string();
}

absl::Status DockerProvider::RemoveDroppedServices(ApplyState& st) {
  for (const auto& [service, c] : st.existing) {
    if (st.compose.Find(service) != nullptr) continue;
    absl::StatusOr<EngineResponse> d =
        engine_.Delete(fmt::format("/containers/{}?force=1&v=1", Str(c, "Id")));
    if (!d.ok()) return d.status();
    ++st.removed;
  }
  return absl::OkStatus();
}

absl::Status DockerProvider::Rollback(const ApplyState& st, absl::Status error) {
  for (const std::string& id : st.created_containers) {
    (void)engine_.Delete(fmt::format("/containers/{}?force=1&v=1", id));
  }
  // Volumes and the network only when nothing of the environment existed before this Apply.
  if (st.existing.empty()) {
    for (const std::string& v : st.created_volumes) (void)engine_.Delete("/volumes/" + v);
    if (st.created_network) (void)engine_.Delete("/networks/" + NetworkName(st.project));
  }
  return error;
}

absl::Status DockerProvider::EnsureNetwork(const std::string& project,
                                           const std::string& environment,
                                           const std::map<std::string, std::string>& labels,
                                           bool& created) {
  created = false;
  const std::string network = NetworkName(project);
  absl::StatusOr<EngineResponse> r = engine_.Get("/networks/" + UrlEncode(network));
  if (!r.ok()) return r.status();
  if (r->status == 200) {
    const json n = Parse(*r);
    if (Str(n, "Name") == network) {
      if (!Owns(Field(n, "Labels"), environment, InstallationOf(labels))) {
        return absl::FailedPreconditionError(fmt::format(
            "network {} exists on the Docker host but is not Eph's environment {} of this "
            "installation (its eph.dev labels say otherwise); remove or rename it",
            network, environment));
      }
      return absl::OkStatus();
    }
  } else if (r->status != 404) {
    return ErrorFromResponse(*r, "inspecting network " + network);
  }
  json body = {
      {"Name", network}, {"Driver", "bridge"}, {"CheckDuplicate", true}, {"Labels", labels}};
  body["Labels"][kManagedByLabel] = kManagedByValue;
  body["Labels"][kEnvironmentLabel] = environment;
  body["Labels"][kProjectLabel] = project;
  body["Labels"]["com.docker.compose.network"] = "default";
  absl::StatusOr<EngineResponse> c = engine_.Post("/networks/create", body.dump());
  if (!c.ok()) return c.status();
  if (c->status != 201) return ErrorFromResponse(*c, "creating network " + network);
  created = true;
  return absl::OkStatus();
}

absl::Status DockerProvider::EnsureVolume(const std::string& project, const std::string& volume,
                                          const std::map<std::string, std::string>& volume_labels,
                                          const std::string& environment,
                                          const std::map<std::string, std::string>& labels,
                                          bool& created) {
  created = false;
  const std::string name = VolumeName(project, volume);
  absl::StatusOr<EngineResponse> r = engine_.Get("/volumes/" + UrlEncode(name));
  if (!r.ok()) return r.status();
  if (r->status == 200) {
    if (!Owns(Field(Parse(*r), "Labels"), environment, InstallationOf(labels))) {
      return absl::FailedPreconditionError(fmt::format(
          "volume {} exists on the Docker host but is not Eph's environment {}; remove or "
          "rename it",
          name, environment));
    }
    return absl::OkStatus();
  }
  if (r->status != 404) return ErrorFromResponse(*r, "inspecting volume " + name);
  json body = {{"Name", name}, {"Labels", labels}};
  for (const auto& [k, val] : volume_labels) body["Labels"][k] = val;
  body["Labels"][kManagedByLabel] = kManagedByValue;
  body["Labels"][kEnvironmentLabel] = environment;
  body["Labels"][kProjectLabel] = project;
  body["Labels"]["com.docker.compose.volume"] = volume;
  absl::StatusOr<EngineResponse> c = engine_.Post("/volumes/create", body.dump());
  if (!c.ok()) return c.status();
  if (c->status != 201) return ErrorFromResponse(*c, "creating volume " + name);
  created = true;
  return absl::OkStatus();
}

namespace {

// The superuser password an existing database container was made with ("" for none): it is
// kept for the life of the environment.
std::string PasswordOf(const std::optional<json>& container) {
  if (!container) return "";
  std::string password;
  const json env = Field(Field(*container, "Config"), "Env");
  if (!env.is_array()) return "";
  for (const json& kv : env) {
    if (kv.is_string() && kv.get<std::string>().rfind("POSTGRES_PASSWORD=", 0) == 0) {
      password = kv.get<std::string>().substr(std::string("POSTGRES_PASSWORD=").size());
    }
  }
  return password;
}

// The engine's create body of an environment's own PostgreSQL server, with its config hash.
json DatabaseContainerBody(const DatabaseServerRequest& request, const std::string& project,
                           const std::map<std::string, std::string>& labels,
                           const std::string& image_id, const std::string& password) {
  ComposeService service;
  service.name = request.name;
  service.image = request.image;
  service.environment = {"POSTGRES_USER=" + std::string(kDatabaseAdminUser), "POSTGRES_DB=postgres",
                         "PGDATA=/var/lib/postgresql/data"};
  service.ports = {PortMapping{.container_port = 5432, .protocol = "tcp", .host_port = 0}};
  service.volumes = {
      VolumeMount{.volume = request.name + "-data", .target = "/var/lib/postgresql/data"}};
  HealthCheck health;
  health.test = {"CMD", "pg_isready",       "-q", "-h",      "127.0.0.1", "-p", "5432",
                 "-U",  kDatabaseAdminUser, "-d", "postgres"};
  health.interval = absl::Milliseconds(500);
  health.timeout = absl::Seconds(5);
  health.retries = 600;
  service.healthcheck = health;
  ServicePlan plan;
  plan.service = &service;
  plan.image = request.image;
  plan.image_id = image_id;
  plan.project = project;
  plan.labels = labels;
  plan.secret_env = {{"POSTGRES_PASSWORD", password}};
  json body = ContainerCreateBody(plan);
  body["Labels"][kConfigHashLabel] = ConfigHash(body, image_id);
  return body;
}

// The published 127.0.0.1 port of a database container's 5432, "" while there is none.
std::string PublishedDatabasePort(const json& container) {
  const json bindings = Field(Field(Field(container, "NetworkSettings"), "Ports"), "5432/tcp");
  std::string host_port;
  if (!bindings.is_array()) return host_port;
  for (const json& b : bindings) {
    if (Str(b, "HostIp") == "127.0.0.1" && !Str(b, "HostPort").empty()) {
      host_port = Str(b, "HostPort");
    }
  }
  return host_port;
}

}  // namespace

absl::StatusOr<DatabaseServer> DockerProvider::EnsureDatabaseServer(
    const DatabaseServerRequest& request) {
  if (request.environment.empty() || request.name.empty() || request.image.empty()) {
    return absl::InvalidArgumentError(
        "Docker provider: a database server needs an environment, a name and an image");
  }
  const std::string project = ProjectOf(request.namespace_name, request.environment);
  std::map<std::string, std::string> labels = request.labels;
  labels[kManagedByLabel] = kManagedByValue;
  labels[kEnvironmentLabel] = request.environment;
  labels[kDatabaseLabel] = request.name;
  const std::string name = ContainerName(project, request.name);

  absl::StatusOr<std::string> image_id =
      LocalImageId(engine_, request.image, fmt::format("database `{}`", request.name),
                   "Eph does not pull a database server's image; load it on the engine (docker "
                   "pull or docker load) or name another in database.instances[].image");
  if (!image_id.ok()) return image_id.status();
  absl::StatusOr<std::optional<json>> current =
      InspectDatabaseContainer(name, request, InstallationOf(labels));
  if (!current.ok()) return current.status();
  std::string password = PasswordOf(*current);
  if (password.empty()) password = SecureRandom::Instance().Hex(24);

  const json body = DatabaseContainerBody(request, project, labels, *image_id, password);
  const bool keep = current->has_value() &&
                    LabelOf(Field(Field(**current, "Config"), "Labels"), kConfigHashLabel) ==
                        Str(body["Labels"], kConfigHashLabel);
  if (!keep) {
    absl::StatusOr<json> made =
        RecreateDatabaseContainer(project, request, labels, name, body, *current);
    if (!made.ok()) return made.status();
    *current = std::move(*made);
  }
  return DatabaseServerState(request, **current, password);
}

absl::StatusOr<std::optional<json>> DockerProvider::InspectDatabaseContainer(
    const std::string& name, const DatabaseServerRequest& request,
    const std::string& installation) {
  absl::StatusOr<EngineResponse> r = engine_.Get(fmt::format("/containers/{}/json", name));
  if (!r.ok()) return r.status();
  if (r->status == 404) return std::optional<json>();
  if (r->status != 200) return ErrorFromResponse(*r, "inspecting container " + name);
  json current = Parse(*r);
  const json& container_labels = Field(Field(current, "Config"), "Labels");
  if (!Owns(container_labels, request.environment, installation) ||
      LabelOf(container_labels, kDatabaseLabel) != request.name) {
    return absl::FailedPreconditionError(
        fmt::format("a container named {} exists on the Docker host but is not the database of "
                    "environment {}; remove or rename it",
                    name, request.environment));
  }
  return std::optional<json>(std::move(current));
}

absl::StatusOr<json> DockerProvider::RecreateDatabaseContainer(
    const std::string& project, const DatabaseServerRequest& request,
    const std::map<std::string, std::string>& labels, const std::string& name, const json& body,
    const std::optional<json>& current) {
  bool created_network = false;
  if (absl::Status st = EnsureNetwork(project, request.environment, labels, created_network);
      !st.ok()) {
    return st;
  }
  bool created_volume = false;
  if (absl::Status st = EnsureVolume(project, request.name + "-data", {}, request.environment,
                                     labels, created_volume);
      !st.ok()) {
    return st;
  }
  if (current) {
    // Another image or setting (a new `version`, say): a new container on the same data.
    absl::StatusOr<EngineResponse> d =
        engine_.Delete(fmt::format("/containers/{}?force=1", Str(*current, "Id")));
    if (!d.ok()) return d.status();
    if (d->status != 204 && d->status != 404) {
      return ErrorFromResponse(*d, "removing the old database container " + name);
    }
  }
  absl::StatusOr<EngineResponse> c =
      engine_.Post("/containers/create?name=" + UrlEncode(name), body.dump());
  if (!c.ok()) return c.status();
  if (c->status != 201) {
    return ErrorFromResponse(*c, fmt::format("creating the database `{}`", request.name));
  }
  const std::string id = Str(Parse(*c), "Id");
  absl::StatusOr<EngineResponse> s = engine_.Post(fmt::format("/containers/{}/start", id), "");
  if (!s.ok()) return s.status();
  if (s->status != 204 && s->status != 304) {
    return absl::FailedPreconditionError(
        fmt::format("starting the database `{}` failed: {}", request.name, EngineMessage(*s)));
  }
  absl::StatusOr<EngineResponse> r = engine_.Get(fmt::format("/containers/{}/json", id));
  if (!r.ok()) return r.status();
  if (r->status != 200) return ErrorFromResponse(*r, "inspecting container " + name);
  return Parse(*r);
}

absl::StatusOr<DatabaseServer> DockerProvider::DatabaseServerState(
    const DatabaseServerRequest& request, const json& current, const std::string& password) {
  DatabaseServer out;
  out.app_host = request.name;
  out.app_port = 5432;
  const json state = Field(current, "State");
  const std::string status = Str(state, "Status");
  const std::string health_status = Str(Field(state, "Health"), "Status");
  const std::string id = Str(current, "Id");
  if (status != "running") {
    if (status == "created") {
      // Made but never started (an interrupted call): start it now.
      absl::StatusOr<EngineResponse> s = engine_.Post(fmt::format("/containers/{}/start", id), "");
      if (!s.ok()) return s.status();
      out.message = fmt::format("database `{}`: starting", request.name);
      return out;
    }
    std::string message =
        fmt::format("the database `{}` ({}) {} with code {}", request.name, request.image,
                    status == "dead" ? "died" : "exited", IntField(state, "ExitCode"));
    const std::string logs = LastLogLines(engine_, id, 5);
    if (!logs.empty()) message += "; last output: " + logs;
    return absl::FailedPreconditionError(message);
  }
  if (health_status == "unhealthy") {
    return absl::FailedPreconditionError(fmt::format(
        "the database `{}` is unhealthy ({})", request.name, HealthOutput(Field(state, "Health"))));
  }
  if (health_status != "healthy") {
    absl::Time started;
    std::string err;
    if (absl::ParseTime(absl::RFC3339_full, Str(state, "StartedAt"), &started, &err) &&
        absl::FromChrono(clock_.Now()) - started > options_.health_timeout) {
      std::string message =
          fmt::format("the database `{}` did not accept connections within {}", request.name,
                      config::DurationString(options_.health_timeout));
      const std::string logs = LastLogLines(engine_, id, 5);
      if (!logs.empty()) message += "; last output: " + logs;
      return absl::FailedPreconditionError(message);
    }
    out.message =
        fmt::format("database `{}`: waiting for the server to accept connections", request.name);
    return out;
  }
  const std::string host_port = PublishedDatabasePort(current);
  if (host_port.empty()) {
    return absl::UnavailableError(
        fmt::format("the database `{}` runs but its port is not published yet", request.name));
  }
  out.ready = true;
  out.admin_url = fmt::format("postgresql://{}:{}@127.0.0.1:{}/postgres", kDatabaseAdminUser,
                              password, host_port);
  return out;
}

namespace {

// The web service's URL on its published port (127.0.0.1 only); "" when it has none yet.
std::string WebUrlOf(const json& container) {
  const std::string web_port = LabelOf(Field(Field(container, "Config"), "Labels"), kWebPortLabel);
  if (web_port.empty() || Str(Field(container, "State"), "Status") != "running") return "";
  const json ports = Field(Field(container, "NetworkSettings"), "Ports");
  const json bindings = Field(ports, (web_port + "/tcp").c_str());
  for (const json& b : Array(bindings)) {
    if (Str(b, "HostIp") == "127.0.0.1" && !Str(b, "HostPort").empty()) {
      return "http://127.0.0.1:" + Str(b, "HostPort");
    }
  }
  return "";
}

// The environment's phase from its components': failed if any is, ready if all are.
void Summarize(Observation& out) {
  std::sort(out.components.begin(), out.components.end(),
            [](const ComponentStatus& a, const ComponentStatus& b) { return a.name < b.name; });
  bool any_failed = false;
  bool all_ready = !out.components.empty();
  std::string failed;
  std::string waiting;
  for (const ComponentStatus& c : out.components) {
    if (c.phase == Phase::kFailed) {
      any_failed = true;
      failed += (failed.empty() ? "" : "; ") + c.message;
    } else if (c.phase != Phase::kReady) {
      all_ready = false;
      waiting += (waiting.empty() ? "" : "; ") + c.message;
    }
  }
  if (any_failed) {
    out.phase = Phase::kFailed;
    out.message = failed;
  } else if (all_ready) {
    out.phase = Phase::kReady;
  } else {
    out.phase = Phase::kProgressing;
    out.message = waiting;
  }
}

}  // namespace

absl::StatusOr<Observation> DockerProvider::Observe(const EnvironmentRef& ref) {
  absl::StatusOr<EngineResponse> listed =
      engine_.Get("/containers/json?all=1&filters=" + EnvFilter(ref.environment));
  if (!listed.ok()) return listed.status();
  if (listed->status != 200) return ErrorFromResponse(*listed, "listing containers");
  const json containers = Parse(*listed);
  Observation out;
  if (!containers.is_array() || containers.empty()) {
    absl::StatusOr<EngineResponse> nets =
        engine_.Get("/networks?filters=" + EnvFilter(ref.environment));
    if (!nets.ok()) return nets.status();
    const json n = Parse(*nets);
    if (n.is_array() && !n.empty()) {
      out.phase = Phase::kProgressing;
      out.message = "the network exists but no container does yet";
    }
    return out;
  }
  const TimePoint now = clock_.Now();
  for (const json& summary : Array(containers)) {
    const std::string id = Str(summary, "Id");
    absl::StatusOr<EngineResponse> r = engine_.Get(fmt::format("/containers/{}/json", id));
    if (!r.ok()) return r.status();
    if (r->status == 404) continue;  // removed in between
    if (r->status != 200) return ErrorFromResponse(*r, "inspecting container " + id);
    const json c = Parse(*r);
    out.components.push_back(ComponentOf(c, ref.environment, now));
    if (const std::string url = WebUrlOf(c); !url.empty()) out.url = url;
  }
  Summarize(out);
  return out;
}

ComponentStatus DockerProvider::ComponentOf(const json& c, const std::string& environment,
                                            TimePoint now) {
  const std::string id = Str(c, "Id");
  const json labels = Field(Field(c, "Config"), "Labels");
  ComponentStatus component;
  component.name = LabelOf(labels, kServiceLabel);
  const json state = Field(c, "State");
  const std::string status = Str(state, "Status");
  const int64_t exit_code = IntField(state, "ExitCode");
  auto with_logs = [&](std::string message) {
    const std::string logs = LastLogLines(engine_, id, 5);
    if (!logs.empty()) message += "; last output: " + logs;
    return message;
  };
  if (status == "running") return RunningComponentOf(c, environment, now);
  start_prober_->Forget(id);
  if (status == "created") {
    component.phase = Phase::kProgressing;
    component.message = fmt::format("service `{}`: created, not started (waits for its depends_on)",
                                    component.name);
  } else if (status == "restarting") {
    component.phase = Phase::kFailed;
    component.message = with_logs(fmt::format("service `{}` keeps restarting (last exit code {})",
                                              component.name, exit_code));
  } else if ((status == "exited" || status == "dead") && exit_code == 0 &&
             LabelOf(labels, kWebPortLabel).empty()) {
    component.phase = Phase::kReady;  // a one-shot task (migration, seed) that completed
    component.message = "completed";
  } else {
    std::string message = fmt::format("service `{}` {} with code {}", component.name,
                                      status == "dead" ? "died" : "exited", exit_code);
    const std::string error = Str(state, "Error");
    if (!error.empty()) message += ": " + error;
    if (Field(state, "OOMKilled") == json(true)) message += " (out of memory)";
    component.phase = Phase::kFailed;
    component.message = with_logs(message);
  }
  return component;
}

ComponentStatus DockerProvider::RunningComponentOf(const json& c, const std::string& environment,
                                                   TimePoint now) {
  ComponentStatus component;
  component.name = LabelOf(Field(Field(c, "Config"), "Labels"), kServiceLabel);
  const json state = Field(c, "State");
  const json health = Field(state, "Health");
  const std::string health_status = Str(health, "Status");
  // The engine's own health status wins once it has one.
  if (health_status != "starting") start_prober_->Forget(Str(c, "Id"));
  if (health_status.empty() || health_status == "healthy") {
    component.phase = Phase::kReady;
  } else if (health_status == "starting" && PassedStartProbe(c, environment)) {
    component.phase = Phase::kReady;
    component.message = "passed its healthcheck in the start period (Eph's start_interval)";
  } else if (health_status == "unhealthy") {
    component.phase = Phase::kFailed;
    component.message =
        fmt::format("service `{}` is unhealthy ({})", component.name, HealthOutput(health));
  } else {
    absl::Time started;
    std::string err;
    const bool parsed =
        absl::ParseTime(absl::RFC3339_full, Str(state, "StartedAt"), &started, &err);
    if (parsed && absl::FromChrono(now) - started > options_.health_timeout) {
      component.phase = Phase::kFailed;
      component.message =
          fmt::format("service `{}` did not become healthy within {} ({})", component.name,
                      config::DurationString(options_.health_timeout), HealthOutput(health));
    } else {
      component.phase = Phase::kProgressing;
      component.message = fmt::format("service `{}`: waiting for its healthcheck", component.name);
    }
  }
  return component;
}

bool DockerProvider::PassedStartProbe(const json& container, const std::string& environment) {
  std::optional<StartProbe> probe = StartProbeOf(container, environment);
  if (!probe) return false;
  if (start_prober_->Passed(probe->container_id)) return true;
  start_prober_->Track(*std::move(probe));
  return false;
}

absl::Status DockerProvider::WatchChanges(const ChangeSink& sink, std::stop_token stop) {
  // The start_interval emulation's passes come from Eph's own checks, not from the engine.
  const uint64_t probe_sink = start_prober_->AddSink(sink);
  struct Unregister {
    StartProber& prober;
    uint64_t id;
    ~Unregister() { prober.RemoveSink(id); }
  } unregister{*start_prober_, probe_sink};
  // Container events of Eph's objects. Readiness and failure show as health_status, die and oom;
  // destroy is a container removed (by hand, or replaced). Starts are not announced: Eph starts
  // containers itself, and the Apply that did so observes right after.
  const json filters = {
      {"type", json::array({"container"})},
      {"label", json::array({fmt::format("{}={}", kManagedByLabel, kManagedByValue)})}};
  std::string pending;
  EngineRequest r;
  r.path = "/events?filters=" + UrlEncode(filters.dump());
  r.timeout = std::chrono::milliseconds(-1);
  r.on_body = [&](std::string_view data) {
    pending.append(data);
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      const json event = json::parse(pending.substr(0, nl), nullptr, false);
      pending.erase(0, nl + 1);
      const std::string environment =
          LabelOf(Field(Field(event, "Actor"), "Attributes"), kEnvironmentLabel);
      if (Announces(event) && !environment.empty()) sink(EnvironmentChange{environment});
    }
    // An event stream has no lines this long; a broken one must not grow without bound.
    if (pending.size() > (size_t{1} << 20)) pending.clear();
    return !stop.stop_requested();
  };
  r.cancelled = [&] { return stop.stop_requested(); };
  absl::StatusOr<EngineResponse> resp = engine_.Perform(r);
  if (stop.stop_requested()) return absl::OkStatus();
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) return ErrorFromResponse(*resp, "watching the engine's events");
  return absl::UnavailableError("the Docker engine ended its event stream");
}

bool DockerProvider::Announces(const json& event) {
  const std::string action = Str(event, "Action");
  const std::string id = Str(Field(event, "Actor"), "ID");
  if (action == "health_status: healthy" && start_prober_->Passed(id)) {
    // Observe counts it ready since Eph's own check passed, which was announced then: one
    // reconcile pass (and its forge reads) less per start.
    start_prober_->Forget(id);
    return false;
  }
  if (action == "destroy") start_prober_->Forget(id);  // its pass is of no more use
  return action.rfind("health_status", 0) == 0 || action == "die" || action == "oom" ||
         action == "destroy";
}

absl::StatusOr<DestroyResult> DockerProvider::Destroy(const EnvironmentRef& ref) {
  if (ref.environment.empty()) {
    return absl::InvalidArgumentError("Docker provider: the request names no environment");
  }
  const std::string filter = EnvFilter(ref.environment);
  struct Kind {
    const char* list;
    const char* noun;
    const char* id_key;
  };
  std::vector<std::string> problems;
  for (const Kind& kind :
       {Kind{"/containers/json?all=1&filters=", "container", "Id"},
        Kind{"/networks?filters=", "network", "Id"}, Kind{"/volumes?filters=", "volume", "Name"}}) {
    absl::StatusOr<EngineResponse> r = engine_.Get(kind.list + filter);
    if (!r.ok()) return r.status();
    if (r->status != 200) return ErrorFromResponse(*r, std::string("listing ") + kind.noun + "s");
    json items = Parse(*r);
    if (std::string_view(kind.noun) == "volume") items = Field(items, "Volumes");
    if (!items.is_array()) continue;
    for (const json& item : items) {
      const std::string id = Str(item, kind.id_key);
      std::string path;
      if (std::string_view(kind.noun) == "container") {
        path = fmt::format("/containers/{}?force=1&v=1", id);
      } else if (std::string_view(kind.noun) == "network") {
        path = "/networks/" + id;
      } else {
        path = "/volumes/" + UrlEncode(id);
      }
      absl::StatusOr<EngineResponse> d = engine_.Delete(path);
      if (!d.ok()) return d.status();
      if (d->status >= 300 && d->status != 404) {
        problems.push_back(fmt::format("{} {}: {}", kind.noun, id, EngineMessage(*d)));
      }
    }
  }
  // What is left, read back.
  std::vector<std::string> left;
  absl::StatusOr<std::vector<OwnedObject>> owned = ListOwned();
  if (!owned.ok()) return owned.status();
  for (const OwnedObject& o : *owned) {
    if (o.environment == ref.environment) left.push_back(o.kind + " " + o.name);
  }
  DestroyResult out;
  out.done = left.empty();
  if (!out.done) {
    out.message = "still there: ";
    for (size_t i = 0; i < left.size(); ++i) out.message += (i == 0 ? "" : ", ") + left[i];
    for (const std::string& p : problems) out.message += "; " + p;
  }
  return out;
}

absl::Status DockerProvider::Logs(const LogsRequest& request, const LogSink& sink) {
  std::string extra;
  if (!request.component.empty()) extra = fmt::format("{}={}", kServiceLabel, request.component);
  absl::StatusOr<EngineResponse> listed =
      engine_.Get("/containers/json?all=1&filters=" + EnvFilter(request.environment, extra));
  if (!listed.ok()) return listed.status();
  if (listed->status != 200) return ErrorFromResponse(*listed, "listing containers");
  const json containers = Parse(*listed);
  if (request.component.empty() ? false : (!containers.is_array() || containers.empty())) {
    return absl::NotFoundError(
        fmt::format("environment {} has no service `{}`", request.environment, request.component));
  }
  const int64_t tail = request.tail_lines > 0 ? request.tail_lines : options_.log_tail_lines;
  std::mutex sink_mu;
  std::atomic<bool> stop{false};
  auto stream_one = [&](const std::string& id, const std::string& service) -> absl::Status {
    LogDemuxer demux;
    auto on_line = [&](int, std::string_view raw) {
      if (stop.load()) return false;
      LogLine line;
      line.component = service;
      line.text = std::string(SplitTimestamp(raw, line.at));
      std::lock_guard<std::mutex> lock(sink_mu);
      if (stop.load() || !sink(line)) {
        stop.store(true);
        return false;
      }
      return true;
    };
    EngineRequest r;
    r.path = fmt::format("/containers/{}/logs?stdout=1&stderr=1&timestamps=1&tail={}{}", id, tail,
                         request.follow ? "&follow=1" : "");
    r.timeout = request.follow ? std::chrono::milliseconds(-1) : std::chrono::milliseconds(0);
    r.on_body = [&](std::string_view data) { return demux.Feed(data, on_line); };
    r.cancelled = [&] { return stop.load() || request.stop.stop_requested(); };
    absl::StatusOr<EngineResponse> resp = engine_.Perform(r);
    if (!resp.ok()) return resp.status();
    if (resp->stopped_by_reader) return absl::OkStatus();
    if (resp->status == 404) {
      return absl::NotFoundError(
          fmt::format("service `{}` of environment {} is gone", service, request.environment));
    }
    if (resp->status != 200) return ErrorFromResponse(*resp, "reading logs of " + service);
    demux.Finish(on_line);
    return absl::OkStatus();
  };
  std::vector<std::pair<std::string, std::string>> targets;
  for (const json& c : Array(containers)) {
    targets.emplace_back(Str(c, "Id"), LabelOf(Field(c, "Labels"), kServiceLabel));
  }
  std::sort(targets.begin(), targets.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  if (!request.follow || targets.size() <= 1) {
    for (const auto& [id, service] : targets) {
      absl::Status s = stream_one(id, service);
      if (!s.ok()) return s;
      if (stop.load()) break;
    }
    return absl::OkStatus();
  }
  // Following several services: one stream each, lines interleaved as they come.
  std::vector<absl::Status> results(targets.size());
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < targets.size(); ++i) {
      threads.emplace_back(
          [&, i] { results[i] = stream_one(targets[i].first, targets[i].second); });
    }
  }
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OwnedObject>> DockerProvider::ListOwned() {
  const std::string filter = EnvFilter("");
  std::vector<OwnedObject> out;
  absl::StatusOr<EngineResponse> c = engine_.Get("/containers/json?all=1&filters=" + filter);
  if (!c.ok()) return c.status();
  if (c->status != 200) return ErrorFromResponse(*c, "listing containers");
  for (const json& item : Array(Parse(*c))) {
    std::string name = Str(item, "Id");
    const json names = Field(item, "Names");
    if (names.is_array() && !names.empty() && names[0].is_string()) {
      name = names[0].get<std::string>();
      if (!name.empty() && name[0] == '/') name.erase(0, 1);
    }
    out.push_back(OwnedFrom("container", name, Field(item, "Labels")));
  }
  absl::StatusOr<EngineResponse> n = engine_.Get("/networks?filters=" + filter);
  if (!n.ok()) return n.status();
  if (n->status != 200) return ErrorFromResponse(*n, "listing networks");
  for (const json& item : Array(Parse(*n))) {
    out.push_back(OwnedFrom("network", Str(item, "Name"), Field(item, "Labels")));
  }
  absl::StatusOr<EngineResponse> v = engine_.Get("/volumes?filters=" + filter);
  if (!v.ok()) return v.status();
  if (v->status != 200) return ErrorFromResponse(*v, "listing volumes");
  const json volumes = Field(Parse(*v), "Volumes");
  if (volumes.is_array()) {
    for (const json& item : volumes) {
      out.push_back(OwnedFrom("volume", Str(item, "Name"), Field(item, "Labels")));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<DockerProvider>> NewDockerProvider(
    const ProviderSettings& settings) {
  absl::StatusOr<DockerProviderOptions> options = ParseDockerSettings(settings);
  if (!options.ok()) return options.status();
  return std::make_unique<DockerProvider>(*std::move(options));
}

absl::Status RegisterDockerProvider(ProviderRegistry& registry) {
  return registry.RegisterFactory(
      kProviderName,
      [](const ProviderSettings& settings) -> absl::StatusOr<std::unique_ptr<Provider>> {
        absl::StatusOr<std::unique_ptr<DockerProvider>> p = NewDockerProvider(settings);
        if (!p.ok()) return p.status();
        return std::unique_ptr<Provider>(*std::move(p));
      });
}

}  // namespace eph::providers::docker
