#include "pkg/providers/registry_auth.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace eph::providers {
namespace {

using nlohmann::json;

constexpr char kDockerHub[] = "docker.io";
// What `docker login` writes for Docker Hub, and what kubelet and the engine expect for it.
constexpr char kDockerHubServerAddress[] = "https://index.docker.io/v1/";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string ServerAddress(const std::string& host) {
  return host == kDockerHub ? kDockerHubServerAddress : host;
}

}  // namespace

std::string NormalizeRegistryHost(std::string_view key) {
  std::string host = Lower(key);
  for (std::string_view scheme : {"https://", "http://"}) {
    if (host.rfind(scheme, 0) == 0) {
      host.erase(0, scheme.size());
      break;
    }
  }
  if (const size_t slash = host.find('/'); slash != std::string::npos) host.resize(slash);
  if (host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com") {
    return kDockerHub;
  }
  return host;
}

std::string RegistryHostOf(std::string_view image) {
  const size_t slash = image.find('/');
  if (slash == std::string_view::npos) return kDockerHub;
  const std::string_view first = image.substr(0, slash);
  if (first.find('.') == std::string_view::npos && first.find(':') == std::string_view::npos &&
      first != "localhost") {
    return kDockerHub;
  }
  return NormalizeRegistryHost(first);
}

const RegistryCredential* RegistryAuth::Find(std::string_view host) const {
  const auto it = by_host_.find(NormalizeRegistryHost(host));
  return it == by_host_.end() ? nullptr : &it->second;
}

std::string RegistryAuth::EngineAuthHeader(std::string_view host) const {
  const RegistryCredential* c = Find(host);
  if (c == nullptr) return "";
  const json doc = {{"username", c->username},
                    {"password", c->password},
                    {"serveraddress", ServerAddress(NormalizeRegistryHost(host))}};
  // URL-safe alphabet *with* padding: the engine decodes with Go's base64.URLEncoding, which
  // rejects an unpadded tail, and then pulls anonymously.
  std::string out = absl::Base64Escape(doc.dump());
  for (char& ch : out) {
    if (ch == '+') ch = '-';
    if (ch == '/') ch = '_';
  }
  return out;
}

std::string RegistryAuth::DockerConfigJson() const {
  json auths = json::object();
  for (const auto& [host, c] : by_host_) {
    auths[ServerAddress(host)] = {
        {"username", c.username},
        {"password", c.password},
        {"auth", absl::Base64Escape(absl::StrCat(c.username, ":", c.password))}};
  }
  return json({{"auths", auths}}).dump();
}

absl::StatusOr<RegistryAuth> ParseRegistryAuth(std::string_view text, std::string_view origin) {
  auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("registry credentials {}: {}", origin, what));
  };
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return fail("not valid JSON (expected Docker's config.json format)");
  if (!doc.is_object()) return fail("expected a JSON object with \"auths\"");
  const auto auths = doc.find("auths");
  if (auths == doc.end() || !auths->is_object()) {
    return fail("no \"auths\" object (expected {\"auths\": {\"host:port\": {\"auth\": ...}}})");
  }
  std::map<std::string, RegistryCredential> by_host;
  for (const auto& [key, entry] : auths->items()) {
    const std::string host = NormalizeRegistryHost(key);
    // A copy: clang (the fuzz build) does not let a lambda capture a structured binding.
    const std::string entry_key = key;
    auto bad = [&](std::string_view what) {
      return fail(fmt::format("\"{}\": {}", entry_key, what));
    };
    if (host.empty()) return bad("not a registry host");
    if (!entry.is_object()) return bad("expected an object");
    std::map<std::string, std::string> fields;
    for (const char* name : {"auth", "username", "password", "identitytoken"}) {
      const auto it = entry.find(name);
      if (it == entry.end() || it->is_null()) continue;
      if (!it->is_string()) return bad(absl::StrCat("\"", name, "\" is not a string"));
      fields[name] = it->get<std::string>();
    }
    RegistryCredential c;
    if (!fields["auth"].empty()) {
      std::string decoded;
      if (!absl::Base64Unescape(fields["auth"], &decoded)) return bad("\"auth\" is not base64");
      const size_t colon = decoded.find(':');
      if (colon == std::string::npos || colon == 0) {
        return bad("\"auth\" is not base64 of \"username:password\"");
      }
      c.username = decoded.substr(0, colon);
      c.password = decoded.substr(colon + 1);
    } else {
      c.username = fields["username"];
      c.password = fields["password"];
      if (c.username.empty() || c.password.empty()) {
        if (!fields["identitytoken"].empty()) {
          return bad("identity tokens are not supported; give \"auth\" or username and password");
        }
        return bad("needs \"auth\" (base64 of username:password) or \"username\" and \"password\"");
      }
    }
    if (by_host.count(host) != 0 && !(by_host[host] == c)) {
      return bad(absl::StrCat("a second, different entry for registry ", host));
    }
    by_host[host] = std::move(c);
  }
  return RegistryAuth(std::move(by_host));
}

absl::StatusOr<RegistryAuth> LoadRegistryAuthFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry credentials ", path, ": cannot read the file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("registry credentials ", path, ": I/O error"));
  }
  return ParseRegistryAuth(text.str(), path);
}

}  // namespace eph::providers
