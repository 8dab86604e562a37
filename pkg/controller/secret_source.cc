#include "pkg/controller/secret_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "pkg/config/config.h"

namespace eph::controller {

absl::StatusOr<std::string> DirectorySecretSource::Get(const std::string& name) const {
  // The name becomes a file name: only variable names, so no '/', "..", or hidden files such
  // as a mounted Secret's "..data".
  if (!config::IsEnvVarName(name)) {
    return absl::InvalidArgumentError("\"" + name + "\" is not a secret's name");
  }
  const std::filesystem::path path = std::filesystem::path(dir_) / name;
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec || status.type() == std::filesystem::file_type::not_found) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return absl::FailedPreconditionError("secret " + name + " cannot be read from " + Describe() +
                                           ": " + ec.message());
    }
    return absl::NotFoundError("secret " + name + " is not configured in ephd (" + Describe() +
                               ")");
  }
  if (status.type() != std::filesystem::file_type::regular) {
    return absl::FailedPreconditionError("secret " + name + " in " + Describe() +
                                         " is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError("secret " + name + " cannot be read from " + Describe() +
                                         ": " + std::strerror(errno));
  }
  std::string value(kMaxValueBytes + 1, '\0');
  in.read(value.data(), static_cast<std::streamsize>(value.size()));
  if (in.bad()) {
    return absl::FailedPreconditionError("secret " + name + " cannot be read from " + Describe() +
                                         ": I/O error");
  }
  value.resize(static_cast<size_t>(in.gcount()));
  if (value.size() > kMaxValueBytes) {
    return absl::FailedPreconditionError("secret " + name + " in " + Describe() +
                                         " is larger than 64 KiB");
  }
  if (value.find('\0') != std::string::npos) {
    return absl::FailedPreconditionError("secret " + name + " in " + Describe() +
                                         " contains a NUL byte, which no environment variable "
                                         "can hold");
  }
  if (value.ends_with("\r\n")) {
    value.resize(value.size() - 2);
  } else if (value.ends_with('\n')) {
    value.pop_back();
  }
  return value;
}

absl::StatusOr<std::string> ChainedSecretSource::Get(const std::string& name) const {
  for (const std::unique_ptr<SecretSource>& source : sources_) {
    absl::StatusOr<std::string> value = source->Get(name);
    if (value.ok() || value.status().code() != absl::StatusCode::kNotFound) return value;
  }
  return absl::NotFoundError("secret " + name + " is not configured in ephd (" + Describe() + ")");
}

std::string ChainedSecretSource::Describe() const {
  std::vector<std::string> parts;
  for (const std::unique_ptr<SecretSource>& source : sources_) {
    parts.push_back(source->Describe());
  }
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<std::map<std::string, std::string>> ResolveSecrets(
    const std::vector<std::string>& names, const SecretSource* source) {
  std::map<std::string, std::string> values;
  std::vector<std::string> missing;
  for (const std::string& name : names) {
    if (source == nullptr) {
      missing.push_back(name);
      continue;
    }
    absl::StatusOr<std::string> value = source->Get(name);
    if (value.ok()) {
      values[name] = *std::move(value);
    } else if (value.status().code() == absl::StatusCode::kNotFound) {
      missing.push_back(name);
    } else {
      return value.status();
    }
  }
  if (missing.empty()) return values;
  const std::string where = source == nullptr ? "no secrets_dir is set" : source->Describe();
  if (missing.size() == 1) {
    return absl::FailedPreconditionError("secret " + missing[0] + " is not configured in ephd (" +
                                         where + ")");
  }
  return absl::FailedPreconditionError("secrets " + absl::StrJoin(missing, ", ") +
                                       " are not configured in ephd (" + where + ")");
}

std::string RedactSecretValues(std::string text,
                               const std::map<std::string, std::string>& secrets) {
  // Longest first, so a value containing another is replaced whole.
  std::vector<std::pair<std::string_view, std::string_view>> by_length;
  for (const auto& [name, value] : secrets) {
    if (value.size() >= kMinRedactedLength) by_length.emplace_back(value, name);
  }
  std::sort(by_length.begin(), by_length.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [value, name] : by_length) {
    const std::string replacement = "[secret " + std::string(name) + "]";
    for (size_t at = text.find(value); at != std::string::npos;
         at = text.find(value, at + replacement.size())) {
      text.replace(at, value.size(), replacement);
    }
  }
  return text;
}

}  // namespace eph::controller
