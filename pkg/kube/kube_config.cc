#include "pkg/kube/kube_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/kube/api_errors.h"

namespace eph::kube {
namespace {

namespace fs = std::filesystem;

constexpr char kExecV1[] = "client.authentication.k8s.io/v1";
constexpr char kExecV1beta1[] = "client.authentication.k8s.io/v1beta1";

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot read {}", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads one kubeconfig and resolves what it says into a KubeConfig. Every error goes through
// Fail(), which prefixes the file.
class KubeconfigReader {
 public:
  KubeconfigReader(const std::string& path, const KubeconfigOptions& options)
      : path_(path),
        dir_(fs::absolute(fs::path(path)).parent_path()),
        options_(options),
        clock_(options.clock != nullptr ? *options.clock : SystemClock::Instance()) {}

  absl::StatusOr<KubeConfig> Read(const std::string& yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(yaml);
    } catch (const YAML::Exception& e) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("is not valid YAML: {}", e.what()));
    }
    try {
      return Resolve(root);
    } catch (const YAML::Exception& e) {
      // A value of the wrong type (a list where a string belongs, "maybe" for a bool).
      return Fail(absl::StatusCode::kInvalidArgument, fmt::format("bad value: {}", e.what()));
    }
  }

 private:
  absl::Status Fail(absl::StatusCode code, const std::string& what) const {
    return absl::Status(code, fmt::format("kubeconfig {}: {}", path_, what));
  }

  std::string Resolve(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (dir_ / p).lexically_normal().string();
  }

  static std::string Str(const YAML::Node& map, const char* key) {
    const YAML::Node v = map[key];
    if (!v || v.IsNull()) return "";
    return v.as<std::string>();
  }

  // clusters/users/contexts are lists of {name, <kind>: {...}}.
  absl::StatusOr<YAML::Node> FindNamed(const YAML::Node& root, const char* list, const char* inner,
                                       const std::string& name) const {
    const YAML::Node items = root[list];
    std::vector<std::string> names;
    if (items && items.IsSequence()) {
      for (const auto& item : items) {
        const std::string n = Str(item, "name");
        names.push_back(n);
        if (n == name) {
          YAML::Node body = item[inner];
          if (!body || !body.IsMap()) {
            if (body && !body.IsNull()) {
              return Fail(absl::StatusCode::kInvalidArgument,
                          fmt::format("{} \"{}\" has no {} map", list, name, inner));
            }
            return YAML::Node(YAML::NodeType::Map);
          }
          return body;
        }
      }
    } else if (items && !items.IsNull()) {
      return Fail(absl::StatusCode::kInvalidArgument, fmt::format("{} is not a list", list));
    }
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return Fail(absl::StatusCode::kInvalidArgument,
                fmt::format("{} \"{}\" is not defined (the file has: {})", inner, name,
                            known.empty() ? "none" : known));
  }

  // A "-data" field (base64) or a file field, e.g. certificate-authority-data and
  // certificate-authority. The data form wins, as in kubectl.
  absl::StatusOr<std::string> DataOrFile(const YAML::Node& map, const std::string& field,
                                         const std::string& owner, std::string* origin) const {
    const std::string data_field = field + "-data";
    const std::string data = Str(map, data_field.c_str());
    if (!data.empty()) {
      std::string compact = data;
      compact.erase(std::remove_if(compact.begin(), compact.end(),
                                   [](unsigned char c) { return absl::ascii_isspace(c); }),
                    compact.end());
      std::string decoded;
      if (!absl::Base64Unescape(compact, &decoded)) {
        return Fail(absl::StatusCode::kInvalidArgument,
                    fmt::format("{}: {} is not valid base64", owner, data_field));
      }
      if (origin != nullptr)
        *origin = fmt::format("{} of {} in kubeconfig {}", data_field, owner, path_);
      return decoded;
    }
    const std::string file = Str(map, field.c_str());
    if (file.empty()) return std::string();
    const std::string resolved = Resolve(file);
    absl::StatusOr<std::string> content = ReadWholeFile(resolved);
    if (!content.ok()) {
      return Fail(absl::StatusCode::kFailedPrecondition,
                  fmt::format("{}: {} {} cannot be read", owner, field, resolved));
    }
    if (origin != nullptr)
      *origin = fmt::format("{} {} of {} in kubeconfig {}", field, resolved, owner, path_);
    return *content;
  }

  absl::StatusOr<KubeConfig> Resolve(const YAML::Node& root) {
    if (!root || !root.IsMap()) {
      return Fail(absl::StatusCode::kInvalidArgument, "is not a kubeconfig (expected a YAML map)");
    }
    const std::string kind = Str(root, "kind");
    if (!kind.empty() && kind != "Config") {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("has kind \"{}\", want Config", kind));
    }
    std::string context_name = options_.context;
    if (context_name.empty()) context_name = Str(root, "current-context");
    if (context_name.empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  "has no current-context and no context was given");
    }
    absl::StatusOr<YAML::Node> context = FindNamed(root, "contexts", "context", context_name);
    if (!context.ok()) return context.status();
    const std::string cluster_name = Str(*context, "cluster");
    const std::string user_name = Str(*context, "user");
    if (cluster_name.empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("context \"{}\" names no cluster", context_name));
    }

    KubeConfig out;
    out.origin = fmt::format("kubeconfig {} (context {})", path_, context_name);
    const std::string ns = Str(*context, "namespace");
    if (!ns.empty()) out.default_namespace = ns;

    absl::StatusOr<YAML::Node> cluster = FindNamed(root, "clusters", "cluster", cluster_name);
    if (!cluster.ok()) return cluster.status();
    const std::string cluster_owner = fmt::format("cluster \"{}\"", cluster_name);
    out.server = Str(*cluster, "server");
    while (!out.server.empty() && out.server.back() == '/') out.server.pop_back();
    if (out.server.empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{} has no server", cluster_owner));
    }
    if (out.server.rfind("https://", 0) != 0 && out.server.rfind("http://", 0) != 0) {
      return Fail(
          absl::StatusCode::kInvalidArgument,
          fmt::format("{}: server \"{}\" is not an http(s):// URL", cluster_owner, out.server));
    }
    absl::StatusOr<std::string> ca =
        DataOrFile(*cluster, "certificate-authority", cluster_owner, &out.ca_origin);
    if (!ca.ok()) return ca.status();
    out.ca_pem = *ca;
    if (!out.ca_pem.empty() &&
        out.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Fail(
          absl::StatusCode::kInvalidArgument,
          fmt::format("{}: the certificate authority is not a PEM certificate", cluster_owner));
    }
    if (const YAML::Node v = (*cluster)["insecure-skip-tls-verify"]; v && !v.IsNull()) {
      out.insecure_skip_tls_verify = v.as<bool>();
    }
    if (out.insecure_skip_tls_verify && !out.ca_pem.empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{} sets both a certificate authority and "
                              "insecure-skip-tls-verify; choose one",
                              cluster_owner));
    }
    out.tls_server_name = Str(*cluster, "tls-server-name");
    out.proxy_url = Str(*cluster, "proxy-url");

    if (user_name.empty()) {
      out.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
      return out;
    }
    absl::StatusOr<YAML::Node> user = FindNamed(root, "users", "user", user_name);
    if (!user.ok()) return user.status();
    absl::Status st = ResolveUser(*user, user_name, out);
    if (!st.ok()) return st;
    return out;
  }

  absl::Status ResolveUser(const YAML::Node& user, const std::string& user_name,
                           KubeConfig& out) const {
    const std::string owner = fmt::format("user \"{}\"", user_name);
    if (user["auth-provider"]) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{} uses an auth-provider, which Eph does not support; use an "
                              "exec credential plugin instead",
                              owner));
    }
    if (!Str(user, "username").empty() || !Str(user, "password").empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{} uses username/password, which Eph does not support", owner));
    }
    Credentials base;
    absl::StatusOr<std::string> cert = DataOrFile(user, "client-certificate", owner, nullptr);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = DataOrFile(user, "client-key", owner, nullptr);
    if (!key.ok()) return key.status();
    if (cert->empty() != key->empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{} has a client {} but no client {}", owner,
                              cert->empty() ? "key" : "certificate",
                              cert->empty() ? "certificate" : "key"));
    }
    base.client_certificate_pem = *cert;
    base.client_key_pem = *key;
    base.bearer_token = Str(user, "token");
    const std::string origin = fmt::format("kubeconfig {} {}", path_, owner);

    if (const YAML::Node exec = user["exec"]; exec && !exec.IsNull()) {
      absl::StatusOr<ExecPluginConfig> plugin = ReadExec(exec, owner, out);
      if (!plugin.ok()) return plugin.status();
      out.credentials =
          std::make_shared<ExecCredentialSource>(*std::move(plugin), base, clock_, origin);
      return absl::OkStatus();
    }
    const std::string token_file = Str(user, "tokenFile");
    if (base.bearer_token.empty() && !token_file.empty()) {
      const std::string resolved = Resolve(token_file);
      out.credentials = std::make_shared<TokenFileCredentialSource>(
          resolved, base, clock_, options_.token_file_reread, origin);
      // Fail now, naming the file, rather than at the first request.
      absl::StatusOr<Credentials> first = out.credentials->Get();
      if (!first.ok()) {
        return Fail(absl::StatusCode::kFailedPrecondition,
                    fmt::format("{}: tokenFile {} cannot be read or is empty", owner, resolved));
      }
      return absl::OkStatus();
    }
    out.credentials = std::make_shared<StaticCredentialSource>(base);
    return absl::OkStatus();
  }

  absl::StatusOr<ExecPluginConfig> ReadExec(const YAML::Node& exec, const std::string& owner,
                                            const KubeConfig& cluster) const {
    if (!exec.IsMap()) {
      return Fail(absl::StatusCode::kInvalidArgument, fmt::format("{}: exec is not a map", owner));
    }
    ExecPluginConfig plugin;
    plugin.api_version = Str(exec, "apiVersion");
    if (plugin.api_version != kExecV1 && plugin.api_version != kExecV1beta1) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{}: exec apiVersion \"{}\" is not supported (use {} or {})", owner,
                              plugin.api_version, kExecV1, kExecV1beta1));
    }
    plugin.command = Str(exec, "command");
    if (plugin.command.empty()) {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{}: exec has no command", owner));
    }
    // As kubectl: a command with a path separator is relative to the kubeconfig, a bare name is
    // looked up on PATH.
    if (plugin.command.find('/') != std::string::npos) plugin.command = Resolve(plugin.command);
    if (const YAML::Node args = exec["args"]; args && !args.IsNull()) {
      if (!args.IsSequence()) {
        return Fail(absl::StatusCode::kInvalidArgument,
                    fmt::format("{}: exec args is not a list", owner));
      }
      for (const auto& a : args) plugin.args.push_back(a.as<std::string>());
    }
    if (const YAML::Node env = exec["env"]; env && !env.IsNull()) {
      if (!env.IsSequence()) {
        return Fail(absl::StatusCode::kInvalidArgument,
                    fmt::format("{}: exec env is not a list of {{name, value}}", owner));
      }
      for (const auto& e : env) {
        const std::string name = Str(e, "name");
        if (name.empty() || name.find('=') != std::string::npos) {
          return Fail(absl::StatusCode::kInvalidArgument,
                      fmt::format("{}: exec env entry has no valid name", owner));
        }
        plugin.env.emplace_back(name, Str(e, "value"));
      }
    }
    plugin.install_hint = Str(exec, "installHint");
    plugin.interactive_mode = Str(exec, "interactiveMode");
    if (!plugin.interactive_mode.empty() && plugin.interactive_mode != "Never" &&
        plugin.interactive_mode != "IfAvailable" && plugin.interactive_mode != "Always") {
      return Fail(absl::StatusCode::kInvalidArgument,
                  fmt::format("{}: exec interactiveMode \"{}\" is not Never, IfAvailable or "
                              "Always",
                              owner, plugin.interactive_mode));
    }
    bool provide_cluster_info = false;
    if (const YAML::Node v = exec["provideClusterInfo"]; v && !v.IsNull()) {
      provide_cluster_info = v.as<bool>();
    }
    nlohmann::json info = {{"apiVersion", plugin.api_version},
                           {"kind", "ExecCredential"},
                           {"spec", {{"interactive", false}}}};
    if (provide_cluster_info) {
      nlohmann::json c = {{"server", cluster.server}};
      if (!cluster.ca_pem.empty()) {
        c["certificate-authority-data"] = absl::Base64Escape(cluster.ca_pem);
      }
      if (cluster.insecure_skip_tls_verify) c["insecure-skip-tls-verify"] = true;
      if (!cluster.tls_server_name.empty()) c["tls-server-name"] = cluster.tls_server_name;
      if (!cluster.proxy_url.empty()) c["proxy-url"] = cluster.proxy_url;
      info["spec"]["cluster"] = c;
    }
    plugin.exec_info_json = info.dump();
    plugin.timeout = options_.exec_timeout;
    return plugin;
  }

  const std::string path_;
  const fs::path dir_;
  const KubeconfigOptions& options_;
  const Clock& clock_;
};

}  // namespace

absl::StatusOr<KubeConfig> ParseKubeconfig(const std::string& yaml, const std::string& path,
                                           const KubeconfigOptions& options) {
  return KubeconfigReader(path, options).Read(yaml);
}

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path,
                                          const KubeconfigOptions& options) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    return absl::FailedPreconditionError(fmt::format("kubeconfig {}: cannot read the file", path));
  }
  return ParseKubeconfig(*text, path, options);
}

absl::StatusOr<KubeConfig> LoadInClusterConfig(const InClusterOptions& options) {
  auto getenv = [&](const std::string& name) -> std::optional<std::string> {
    if (options.getenv) return options.getenv(name);
    // Nothing in Eph sets environment variables after start-up.
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  const std::optional<std::string> host = getenv("KUBERNETES_SERVICE_HOST");
  const std::optional<std::string> port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    return absl::FailedPreconditionError(
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set "
        "(not running in a pod?)");
  }
  KubeConfig out;
  out.origin = fmt::format("in-cluster service account ({})", options.root);
  const bool ipv6 = host->find(':') != std::string::npos;
  out.server = fmt::format("https://{}{}{}:{}", ipv6 ? "[" : "", *host, ipv6 ? "]" : "", *port);
  const std::string ca_path = options.root + "/ca.crt";
  absl::StatusOr<std::string> ca = ReadWholeFile(ca_path);
  if (!ca.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("in-cluster config: cannot read the cluster CA {}", ca_path));
  }
  out.ca_pem = *ca;
  out.ca_origin = ca_path;
  if (absl::StatusOr<std::string> ns = ReadWholeFile(options.root + "/namespace"); ns.ok()) {
    std::string n = *ns;
    absl::StripAsciiWhitespace(&n);
    if (!n.empty()) out.default_namespace = n;
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : SystemClock::Instance();
  out.credentials = std::make_shared<TokenFileCredentialSource>(
      options.root + "/token", Credentials{}, clock, options.token_reread,
      "in-cluster service account");
  absl::StatusOr<Credentials> first = out.credentials->Get();
  if (!first.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("in-cluster config: {}", MessageOf(first.status())));
  }
  return out;
}

}  // namespace eph::kube
