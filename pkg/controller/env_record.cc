#include "pkg/controller/env_record.h"

#include <nlohmann/json.hpp>

namespace eph::controller {
namespace {

using nlohmann::json;

template <typename T>
T Get(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

}  // namespace

EnvRecord ParseEnvRecord(const std::string& spec_json) {
  EnvRecord r;
  json j = json::parse(spec_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return r;
  r.trigger_labels = Get<std::vector<std::string>>(j, "trigger_labels", {});
  r.idle_timeout_ms = Get<int64_t>(j, "idle_timeout_ms", 0);
  if (auto it = j.find("images"); it != j.end() && it->is_array()) {
    for (const json& image : *it) {
      if (!image.is_object()) continue;
      r.images.push_back({Get<std::string>(image, "name", ""), Get<std::string>(image, "tag", "")});
    }
  }
  auto c = j.find("controller");
  if (c == j.end() || !c->is_object()) return r;
  r.applied_sha = Get<std::string>(*c, "applied_sha", "");
  r.failed_sha = Get<std::string>(*c, "failed_sha", "");
  r.provider_touched = Get<bool>(*c, "provider_touched", false);
  if (auto b = c->find("block_recreate"); b != c->end() && b->is_boolean()) {
    r.block_recreate = b->get<bool>();
  }
  r.deployment_id = Get<int64_t>(*c, "deployment_id", 0);
  r.deployment_sha = Get<std::string>(*c, "deployment_sha", "");
  r.reported = Get<std::string>(*c, "reported", "");
  r.last_comment_id = Get<int64_t>(*c, "last_comment_id", 0);
  r.database_touched = Get<bool>(*c, "database_touched", false);
  r.command_note = Get<std::string>(*c, "command_note", "");
  r.components = Get<std::vector<std::string>>(*c, "components", {});
  r.apply_started_ms = Get<int64_t>(*c, "apply_started_ms", 0);
  r.apply_sha = Get<std::string>(*c, "apply_sha", "");
  return r;
}

std::string EnvRecordJson(const EnvRecord& r) {
  json images = json::array();
  for (const providers::ImageTag& image : r.images) {
    images.push_back({{"name", image.name}, {"tag", image.tag}});
  }
  json controller = {{"applied_sha", r.applied_sha},           {"failed_sha", r.failed_sha},
                     {"provider_touched", r.provider_touched}, {"deployment_id", r.deployment_id},
                     {"deployment_sha", r.deployment_sha},     {"reported", r.reported}};
  if (r.block_recreate.has_value()) controller["block_recreate"] = *r.block_recreate;
  if (r.last_comment_id != 0) controller["last_comment_id"] = r.last_comment_id;
  if (r.database_touched) controller["database_touched"] = true;
  if (!r.command_note.empty()) controller["command_note"] = r.command_note;
  if (!r.components.empty()) controller["components"] = r.components;
  if (!r.apply_sha.empty()) {
    controller["apply_started_ms"] = r.apply_started_ms;
    controller["apply_sha"] = r.apply_sha;
  }
  json j = {{"trigger_labels", r.trigger_labels},
            {"idle_timeout_ms", r.idle_timeout_ms},
            {"images", images},
            {"controller", controller}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace eph::controller
