#include "pkg/config/policy.h"

#include <algorithm>

namespace eph::config {
namespace {

bool ClonesTemplate(const ProjectConfig& config, const std::string& instance) {
  return std::any_of(config.database.instances.begin(), config.database.instances.end(),
                     [&](const DatabaseInstance& i) {
                       return i.name == instance && i.strategy == DatabaseTemplateStrategy::kClone;
                     });
}

// The policy keys of `from` replace those of `out`.
void TakePolicy(const ProjectConfig& from, PolicyOutcome& out) {
  ProjectConfig& config = out.config;
  if (config.triggers != from.triggers) {
    out.notes.push_back("triggers come from the default branch's eph.yaml");
  }
  if (config.environment.allow_forks != from.environment.allow_forks) {
    out.notes.push_back("allow_forks comes from the default branch's eph.yaml");
  }
  if (config.environment.secrets != from.environment.secrets) {
    out.notes.push_back("environment.secrets come from the default branch's eph.yaml");
  }
  config.triggers = from.triggers;
  config.environment.allow_forks = from.environment.allow_forks;
  config.environment.random_suffix = from.environment.random_suffix;
  config.environment.secrets = from.environment.secrets;
  // A name can be a variable or a secret, not both: the policy's secret wins.
  for (const std::string& name : config.environment.secrets) config.environment.variables.erase(name);
  for (const DatabaseInstance& instance : config.database.instances) {
    // A clone of the provider's own template (no seed scripts builds it from the head) may
    // hold data the pull request's author should not see.
    if (instance.strategy == DatabaseTemplateStrategy::kClone && instance.seed_scripts.empty() &&
        !ClonesTemplate(from, instance.name)) {
      out.refusal = "database `" + instance.name +
                    "` clones the template database, which only the default branch's eph.yaml "
                    "may ask for";
    }
  }
}

// The policy of a project whose default branch has no eph.yaml: the defaults (no forks).
ProjectConfig DefaultPolicy() {
  ProjectConfig config;
  Trigger trigger;
  trigger.labels = {std::string(kDefaultTriggerLabel)};
  config.triggers = {trigger};
  return config;
}

}  // namespace

PolicyOutcome ApplyProjectPolicy(const ProjectConfig& head, const ProjectConfig* base,
                                 bool from_fork) {
  PolicyOutcome out;
  out.config = head;
  if (base != nullptr) {
    TakePolicy(*base, out);
  } else if (from_fork) {
    TakePolicy(DefaultPolicy(), out);
  }
  if (from_fork) {
    out.restricted = true;
    if (!out.config.environment.secrets.empty()) {
      out.notes.push_back("a fork's environment gets no secrets");
      out.config.environment.secrets.clear();
    }
  }
  return out;
}

}  // namespace eph::config
