#include "pkg/providers/kubernetes/workload_status.h"

#include <algorithm>
#include <map>
#include <set>

#include "fmt/format.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

const json& Field(const json& o, const char* key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  const auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::string Str(const json& o, const char* key) {
  const json& v = Field(o, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

int64_t Int(const json& o, const char* key, int64_t fallback = 0) {
  const json& v = Field(o, key);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

const json* Condition(const json& status, const std::string& type) {
  const json& conditions = Field(status, "conditions");
  if (!conditions.is_array()) return nullptr;
  for (const json& c : conditions) {
    if (Str(c, "type") == type) return &c;
  }
  return nullptr;
}

bool ConditionTrue(const json& status, const std::string& type) {
  const json* c = Condition(status, type);
  return c != nullptr && Str(*c, "status") == "True";
}

ComponentStatus Make(const std::string& name, Phase phase, std::string message = "") {
  ComponentStatus c;
  c.name = name;
  c.phase = phase;
  c.message = std::move(message);
  return c;
}

bool ObservedGenerationBehind(const json& object) {
  const int64_t generation = Int(Field(object, "metadata"), "generation");
  const json& status = Field(object, "status");
  const int64_t observed = Int(status, "observedGeneration");
  return observed == 0 || observed < generation;
}

ComponentStatus EvaluateDeployment(const json& d, const std::string& name) {
  const std::string id = "deployment " + name;
  if (ObservedGenerationBehind(d)) {
    return Make(name, Phase::kProgressing, id + ": waiting for the rollout to start");
  }
  const json& status = Field(d, "status");
  if (const json* c = Condition(status, "Progressing");
      c != nullptr && Str(*c, "reason") == "ProgressDeadlineExceeded") {
    std::string msg = id + ": rollout exceeded its progress deadline";
    if (!Str(*c, "message").empty()) msg += ": " + Str(*c, "message");
    return Make(name, Phase::kFailed, msg);
  }
  const int64_t replicas = Int(Field(d, "spec"), "replicas", 1);
  const int64_t updated = Int(status, "updatedReplicas");
  const int64_t total = Int(status, "replicas");
  const int64_t available = Int(status, "availableReplicas");
  if (updated < replicas) {
    // Pods the ReplicaSet could not create (an exceeded quota, a LimitRange's maximum): the
    // controller's words say why, where the counts do not.
    std::string why;
    if (const json* c = Condition(status, "ReplicaFailure");
        c != nullptr && Str(*c, "status") == "True" && !Str(*c, "message").empty()) {
      why = " (" + Str(*c, "message") + ")";
    }
    return Make(name, Phase::kProgressing,
                fmt::format("{}: {} of {} replicas updated{}", id, updated, replicas, why));
  }
  if (total > updated) {
    return Make(name, Phase::kProgressing,
                fmt::format("{}: {} old replicas pending termination", id, total - updated));
  }
  if (available < updated) {
    return Make(name, Phase::kProgressing,
                fmt::format("{}: {} of {} updated replicas available", id, available, updated));
  }
  return Make(name, Phase::kReady);
}

ComponentStatus EvaluateStatefulSet(const json& s, const std::string& name) {
  const std::string id = "statefulset " + name;
  if (ObservedGenerationBehind(s)) {
    return Make(name, Phase::kProgressing, id + ": waiting for the rollout to start");
  }
  const json& spec = Field(s, "spec");
  const json& status = Field(s, "status");
  const int64_t replicas = Int(spec, "replicas", 1);
  const int64_t ready = Int(status, "readyReplicas");
  if (ready < replicas) {
    return Make(name, Phase::kProgressing,
                fmt::format("{}: {} of {} pods ready", id, ready, replicas));
  }
  const json& strategy = Field(spec, "updateStrategy");
  const std::string type = Str(strategy, "type");
  if (type == "OnDelete") return Make(name, Phase::kReady);
  const json& rolling = Field(strategy, "rollingUpdate");
  const int64_t partition = Int(rolling, "partition");
  if (partition > 0) {
    const int64_t updated = Int(status, "updatedReplicas");
    if (updated < replicas - partition) {
      return Make(name, Phase::kProgressing,
                  fmt::format("{}: {} of {} pods updated", id, updated, replicas - partition));
    }
    return Make(name, Phase::kReady);
  }
  if (Str(status, "updateRevision") != Str(status, "currentRevision")) {
    return Make(
        name, Phase::kProgressing,
        fmt::format("{}: {} of {} pods updated", id, Int(status, "updatedReplicas"), replicas));
  }
  return Make(name, Phase::kReady);
}

ComponentStatus EvaluateDaemonSet(const json& d, const std::string& name) {
  const std::string id = "daemonset " + name;
  if (ObservedGenerationBehind(d)) {
    return Make(name, Phase::kProgressing, id + ": waiting for the rollout to start");
  }
  const json& status = Field(d, "status");
  const int64_t desired = Int(status, "desiredNumberScheduled");
  const int64_t updated = Int(status, "updatedNumberScheduled");
  const int64_t available = Int(status, "numberAvailable");
  if (updated < desired) {
    return Make(name, Phase::kProgressing,
                fmt::format("{}: {} of {} pods updated", id, updated, desired));
  }
  if (available < desired) {
    return Make(name, Phase::kProgressing,
                fmt::format("{}: {} of {} pods available", id, available, desired));
  }
  return Make(name, Phase::kReady);
}

ComponentStatus EvaluateJob(const json& j, const std::string& name) {
  const std::string id = "job " + name;
  const json& status = Field(j, "status");
  for (const char* type : {"Failed", "FailureTarget"}) {
    if (const json* c = Condition(status, type); c != nullptr && Str(*c, "status") == "True") {
      std::string msg = id + " failed";
      if (!Str(*c, "reason").empty()) msg += ": " + Str(*c, "reason");
      if (!Str(*c, "message").empty()) msg += ": " + Str(*c, "message");
      return Make(name, Phase::kFailed, msg);
    }
  }
  if (ConditionTrue(status, "Complete") || ConditionTrue(status, "SuccessCriteriaMet")) {
    return Make(name, Phase::kReady);
  }
  const int64_t completions = Int(Field(j, "spec"), "completions", 1);
  return Make(name, Phase::kProgressing,
              fmt::format("{}: {} of {} completions", id, Int(status, "succeeded"), completions));
}

ComponentStatus EvaluatePod(const json& p, const std::string& name) {
  if (std::optional<std::string> failure = PodFailure(p)) {
    return Make(name, Phase::kFailed, *failure);
  }
  const json& status = Field(p, "status");
  const std::string phase = Str(status, "phase");
  if (phase == "Succeeded") return Make(name, Phase::kReady);
  if (phase == "Failed") {
    std::string msg = "pod " + name + " failed";
    if (!Str(status, "reason").empty()) msg += ": " + Str(status, "reason");
    if (!Str(status, "message").empty()) msg += ": " + Str(status, "message");
    return Make(name, Phase::kFailed, msg);
  }
  if (ConditionTrue(status, "Ready")) return Make(name, Phase::kReady);
  std::string msg = "pod " + name + " is not ready";
  if (const json* sched = Condition(status, "PodScheduled");
      sched != nullptr && Str(*sched, "status") == "False") {
    msg += " (not scheduled: " + Str(*sched, "message") + ")";
  } else if (!phase.empty()) {
    msg += " (" + phase + ")";
  }
  return Make(name, Phase::kProgressing, msg);
}

const json* ControllerOwner(const json& object) {
  const json& owners = Field(Field(object, "metadata"), "ownerReferences");
  if (!owners.is_array()) return nullptr;
  for (const json& o : owners) {
    if (Field(o, "controller").is_boolean() && Field(o, "controller").get<bool>()) return &o;
  }
  return owners.empty() ? nullptr : &owners[0];
}

bool IsWorkloadKind(const std::string& kind) {
  return kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" || kind == "Job";
}

}  // namespace

ComponentStatus EvaluateWorkload(const json& object) {
  const std::string kind = Str(object, "kind");
  const std::string name = Str(Field(object, "metadata"), "name");
  if (kind == "Deployment") return EvaluateDeployment(object, name);
  if (kind == "StatefulSet") return EvaluateStatefulSet(object, name);
  if (kind == "DaemonSet") return EvaluateDaemonSet(object, name);
  if (kind == "Job") return EvaluateJob(object, name);
  if (kind == "Pod") return EvaluatePod(object, name);
  return Make(name, Phase::kReady);
}

std::optional<std::string> PodFailure(const json& pod) {
  static const std::set<std::string> kFatalWaiting = {
      "CrashLoopBackOff",     "ImagePullBackOff",  "ErrImagePull",
      "InvalidImageName",     "ErrImageNeverPull", "CreateContainerConfigError",
      "CreateContainerError", "RunContainerError"};
  const json& meta = Field(pod, "metadata");
  if (!Field(meta, "deletionTimestamp").is_null()) return std::nullopt;
  const json& status = Field(pod, "status");
  const std::string name = Str(meta, "name");
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    const json& statuses = Field(status, list);
    if (!statuses.is_array()) continue;
    for (const json& cs : statuses) {
      const json& waiting = Field(Field(cs, "state"), "waiting");
      const std::string reason = Str(waiting, "reason");
      if (reason.empty() || kFatalWaiting.count(reason) == 0) continue;
      std::string msg = fmt::format("pod {}: container {}: {}", name, Str(cs, "name"), reason);
      if (!Str(waiting, "message").empty()) msg += ": " + Str(waiting, "message");
      if (reason == "CrashLoopBackOff") {
        const json& last = Field(Field(cs, "lastState"), "terminated");
        if (last.is_object()) {
          msg += fmt::format(" (last exit code {}{})", Int(last, "exitCode"),
                             Str(last, "reason").empty() ? "" : ", " + Str(last, "reason"));
        }
      }
      return msg;
    }
  }
  return std::nullopt;
}

std::optional<std::string> PodNotScheduled(const json& pod) {
  const json& meta = Field(pod, "metadata");
  if (!Field(meta, "deletionTimestamp").is_null()) return std::nullopt;
  const json* sched = Condition(Field(pod, "status"), "PodScheduled");
  if (sched == nullptr || Str(*sched, "status") != "False") return std::nullopt;
  return fmt::format("pod {} not scheduled: {}", Str(meta, "name"), Str(*sched, "message"));
}

std::string PodComponent(const json& pod) {
  const json& meta = Field(pod, "metadata");
  const json* owner = ControllerOwner(pod);
  if (owner == nullptr) return Str(meta, "name");
  const std::string kind = Str(*owner, "kind");
  std::string owner_name = Str(*owner, "name");
  if (kind == "ReplicaSet") {
    const std::string hash = Str(Field(meta, "labels"), "pod-template-hash");
    const std::string suffix = "-" + hash;
    if (!hash.empty() && owner_name.size() > suffix.size() &&
        owner_name.compare(owner_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return owner_name.substr(0, owner_name.size() - suffix.size());
    }
  }
  return owner_name;
}

std::string TemplateDigest(const json& object) {
  const json& stored = Field(object, kTemplateDigestField);
  if (stored.is_string()) return stored.get<std::string>();
  const json& tmpl = Field(Field(object, "spec"), "template");
  if (!tmpl.is_object()) return "";
  json copy = tmpl;
  if (copy.contains("metadata") && copy["metadata"].is_object() &&
      copy["metadata"].contains("labels") && copy["metadata"]["labels"].is_object()) {
    copy["metadata"]["labels"].erase("pod-template-hash");
  }
  return fmt::format("{:016x}", std::hash<std::string>{}(copy.dump()));
}

bool DeploymentRolledOutByPods(const json& deployment, const std::vector<const json*>& replica_sets,
                               const std::vector<const json*>& pods) {
  const json& meta = Field(deployment, "metadata");
  const json& spec = Field(deployment, "spec");
  if (Int(spec, "minReadySeconds") > 0) return false;
  if (Field(spec, "paused").is_boolean() && Field(spec, "paused").get<bool>()) return false;
  const std::string digest = TemplateDigest(deployment);
  const std::string uid = Str(meta, "uid");
  const std::string name = Str(meta, "name");
  if (digest.empty() || uid.empty()) return false;
  // The new ReplicaSet is the one whose pod template is the Deployment's (ignoring the
  // pod-template-hash label), which is how the deployment controller itself finds it.
  std::string new_rs;
  for (const json* rs : replica_sets) {
    const json* owner = ControllerOwner(*rs);
    if (owner == nullptr || Str(*owner, "uid") != uid) continue;
    if (TemplateDigest(*rs) == digest) new_rs = Str(Field(*rs, "metadata"), "name");
  }
  if (new_rs.empty()) return false;
  int64_t ready = 0;
  for (const json* pod : pods) {
    const json& pod_meta = Field(*pod, "metadata");
    if (!Field(pod_meta, "deletionTimestamp").is_null()) continue;
    const json* owner = ControllerOwner(*pod);
    if (owner == nullptr || Str(*owner, "kind") != "ReplicaSet") continue;
    if (PodComponent(*pod) != name) continue;
    if (Str(*owner, "name") != new_rs) return false;  // a pod of an older template is still there
    if (ConditionTrue(Field(*pod, "status"), "Ready")) ++ready;
  }
  return ready >= Int(spec, "replicas", 1);
}

namespace {

// A workload waiting on a pod the scheduler cannot place (an unbound volume claim, no node that
// fits) says so: its own status only counts pods.
void AddUnscheduled(const std::map<std::string, std::string>& unscheduled_by_component,
                    std::map<std::string, ComponentStatus>& components) {
  for (const auto& [component, pending] : unscheduled_by_component) {
    auto it = components.find(component);
    if (it == components.end() || it->second.phase != Phase::kProgressing) continue;
    it->second.message += " (" + pending + ")";
  }
}

}  // namespace

Observation SummarizeEnvironment(const json& namespace_object, const std::vector<json>& objects) {
  Observation out;
  if (namespace_object.is_null()) {
    out.phase = Phase::kAbsent;
    out.message = "the namespace does not exist";
    return out;
  }
  const std::string ns_name = Str(Field(namespace_object, "metadata"), "name");
  if (!Field(Field(namespace_object, "metadata"), "deletionTimestamp").is_null()) {
    out.phase = Phase::kProgressing;
    out.message = "namespace " + ns_name + " is being deleted";
    return out;
  }
  std::map<std::string, ComponentStatus> components;
  std::vector<std::string> pod_failures;  // failures of pods no listed workload claims
  std::map<std::string, std::string> failure_by_component;
  std::map<std::string, std::string> unscheduled_by_component;
  std::vector<const json*> replica_sets;
  std::vector<const json*> pods;
  std::vector<const json*> progressing_deployments;
  for (const json& o : objects) {
    const std::string kind = Str(o, "kind");
    if (kind == "ReplicaSet") replica_sets.push_back(&o);
    if (kind == "Pod") pods.push_back(&o);
  }
  for (const json& o : objects) {
    const std::string kind = Str(o, "kind");
    if (IsWorkloadKind(kind)) {
      ComponentStatus c = EvaluateWorkload(o);
      if (kind == "Deployment" && c.phase == Phase::kProgressing &&
          DeploymentRolledOutByPods(o, replica_sets, pods)) {
        c.phase = Phase::kReady;
        c.message.clear();
      }
      components[c.name] = std::move(c);
      continue;
    }
    if (kind != "Pod") continue;
    if (ControllerOwner(o) == nullptr) {
      ComponentStatus c = EvaluatePod(o, Str(Field(o, "metadata"), "name"));
      components[c.name] = std::move(c);
      continue;
    }
    if (std::optional<std::string> failure = PodFailure(o)) {
      failure_by_component.emplace(PodComponent(o), *failure);
    } else if (std::optional<std::string> pending = PodNotScheduled(o)) {
      unscheduled_by_component.emplace(PodComponent(o), *pending);
    }
  }
  AddUnscheduled(unscheduled_by_component, components);
  for (const auto& [component, failure] : failure_by_component) {
    auto it = components.find(component);
    if (it == components.end()) {
      pod_failures.push_back(failure);
      continue;
    }
    if (it->second.phase == Phase::kFailed) continue;
    it->second.phase = Phase::kFailed;
    it->second.message = failure;
  }
  std::vector<std::string> failed;
  std::vector<std::string> waiting;
  for (auto& [name, c] : components) {
    if (c.phase == Phase::kFailed) failed.push_back(c.message);
    if (c.phase == Phase::kProgressing) waiting.push_back(c.message);
    out.components.push_back(c);
  }
  for (const std::string& f : pod_failures) failed.push_back(f);
  if (!failed.empty()) {
    out.phase = Phase::kFailed;
    out.message = failed.front();
    if (failed.size() > 1) out.message += fmt::format(" (and {} more)", failed.size() - 1);
    return out;
  }
  if (!waiting.empty()) {
    out.phase = Phase::kProgressing;
    out.message = "waiting for " + waiting.front();
    if (waiting.size() > 1) out.message += fmt::format(" (and {} more)", waiting.size() - 1);
    return out;
  }
  out.phase = Phase::kReady;
  return out;
}

}  // namespace eph::providers::kubernetes
