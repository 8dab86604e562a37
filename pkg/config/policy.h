// The project's policy: the keys of eph.yaml that decide *whether and how safely* a pull request
// gets an environment, as opposed to *what* it deploys (issue 16).
//
// A pull request's head is written by whoever opened it, a fork's by anyone. If its eph.yaml
// chose its own gates, a fork could set `allow_forks: true`, drop `wait_for_checks` or ask for
// ephd's secrets. So the policy is read from eph.yaml on the repository's default branch (which
// only people with write access change), and only what to deploy (manifests, compose file,
// images, databases' seed scripts) comes from the head.
//
// Policy keys: `triggers` (labels, skip labels, drafts, paths, wait_for_checks),
// `environment.allow_forks`, `environment.random_suffix`, `environment.secrets`, and whether a
// database may be a clone of the template database the provider keeps (`template.strategy:
// clone` without seed scripts, which may hold data the pull request's author should not see).
//
// Without an eph.yaml on the default branch (the pull request that introduces Eph, or a broken
// one there): a pull request from the repository itself keeps its own policy, since its author
// can push to the repository anyway; a fork gets the defaults, which allow no fork.
//
// A fork's environment, where the policy allows one, runs under the strict profile: no secrets,
// and the provider's restricted settings (ApplyRequest::restricted).
//
// Thread-safety: pure functions of their arguments.
#ifndef EPH_PKG_CONFIG_POLICY_H_
#define EPH_PKG_CONFIG_POLICY_H_

#include <string>
#include <vector>

#include "pkg/config/config.h"

namespace eph::config {

struct PolicyOutcome {
  ProjectConfig config;  // head's config with the policy keys replaced
  // Set when the head asks for something the policy refuses (the environment fails with it).
  std::string refusal;
  // Where the head's own policy keys differ from what applies, for the log.
  std::vector<std::string> notes;
  bool restricted = false;  // a fork's environment: the strict profile applies
};

// `base` is the default branch's config, nullptr when it has none (or a broken one).
PolicyOutcome ApplyProjectPolicy(const ProjectConfig& head, const ProjectConfig* base,
                                 bool from_fork);

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_POLICY_H_
