#include "pkg/controller/render.h"

#include <nlohmann/json.hpp>

#include "pkg/config/template.h"

namespace eph::controller {
namespace {

using nlohmann::json;

std::string_view StrategyName(config::DatabaseTemplateStrategy s) {
  switch (s) {
    case config::DatabaseTemplateStrategy::kEmpty:
      return "empty";
    case config::DatabaseTemplateStrategy::kSeed:
      return "seed";
    case config::DatabaseTemplateStrategy::kClone:
      return "clone";
  }
  return "empty";
}

class Expander {
 public:
  Expander(const config::ProjectConfig& config, const RenderInputs& in) {
    values_.project = config.name;
    if (in.pr_number > 0) values_.pr_number = std::to_string(in.pr_number);
    if (!in.sha.empty()) {
      values_.sha = in.sha;
      values_.short_sha = in.sha.substr(0, 7);
    }
    if (!in.branch.empty()) values_.branch = in.branch;
  }

  // `where` names the field for the error message, e.g. "kubernetes.images[api].newTag".
  absl::StatusOr<std::string> Expand(const std::string& tmpl, const std::string& where) const {
    absl::StatusOr<std::string> out = config::ExpandTemplate(tmpl, values_);
    if (!out.ok()) {
      return absl::InvalidArgumentError("eph.yaml: " + where + ": " +
                                        std::string(out.status().message()));
    }
    return out;
  }

 private:
  config::TemplateValues values_;
};

absl::Status RenderImages(const std::vector<config::ImageOverride>& images,
                          const std::string& section, const Expander& expander, json& out_json,
                          std::vector<providers::ImageTag>& out_tags) {
  out_json = json::array();
  for (const config::ImageOverride& image : images) {
    absl::StatusOr<std::string> tag =
        expander.Expand(image.new_tag, section + ".images[" + image.name + "].newTag");
    if (!tag.ok()) return tag.status();
    out_json.push_back({{"name", image.name}, {"newTag", *tag}});
    out_tags.push_back({image.name, *tag});
  }
  return absl::OkStatus();
}

}  // namespace

std::string ProviderFor(const config::ProjectConfig& config) {
  return config.kubernetes.has_value() ? "kubernetes" : "docker";
}

absl::StatusOr<RenderedSpec> RenderSpec(const config::ProjectConfig& config,
                                        const RenderInputs& inputs) {
  RenderedSpec out;
  out.provider = ProviderFor(config);
  const Expander expander(config, inputs);
  json root = json::object();
  if (config.kubernetes) {
    const config::KubernetesSettings& k = *config.kubernetes;
    json section = {{"manifests", k.manifests}};
    json images;
    if (absl::Status s = RenderImages(k.images, "kubernetes", expander, images, out.images);
        !s.ok()) {
      return s;
    }
    section["images"] = std::move(images);
    json helm = json::array();
    for (const config::HelmRelease& release : k.helm) {
      json set = json::object();
      for (const auto& [key, value] : release.set) {
        absl::StatusOr<std::string> v =
            expander.Expand(value, "kubernetes.helm[" + release.release_name + "].set." + key);
        if (!v.ok()) return v.status();
        set[key] = *v;
      }
      helm.push_back({{"chart", release.chart},
                      {"values", release.values},
                      {"release_name", release.release_name},
                      {"set", set}});
    }
    section["helm"] = std::move(helm);
    if (k.web) section["web"] = {{"service", k.web->service}, {"port", k.web->port}};
    // The default entry service is the one named like the project (docs/provider-kubernetes.md).
    section["project"] = config.name;
    root["kubernetes"] = std::move(section);
  } else if (config.docker) {
    const config::DockerSettings& d = *config.docker;
    json section = {{"compose_file", d.compose_file}};
    json images;
    if (absl::Status s = RenderImages(d.images, "docker", expander, images, out.images); !s.ok()) {
      return s;
    }
    section["images"] = std::move(images);
    if (d.web) section["web"] = {{"service", d.web->service}, {"port", d.web->port}};
    root["docker"] = std::move(section);
  }
  for (const auto& [name, value] : config.environment.variables) {
    absl::StatusOr<std::string> v = expander.Expand(value, "environment.variables." + name);
    if (!v.ok()) return v.status();
    out.variables.emplace(name, *std::move(v));
  }
  json instances = json::array();
  for (const config::DatabaseInstance& db : config.database.instances) {
    instances.push_back({{"name", db.name},
                         {"version", db.version},
                         {"strategy", StrategyName(db.strategy)},
                         {"seed_scripts", db.seed_scripts}});
  }
  root["database"] = {{"enabled", config.database.enabled}, {"instances", instances}};
  out.config_json = root.dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

}  // namespace eph::controller
