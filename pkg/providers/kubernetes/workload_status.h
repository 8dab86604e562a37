// Readiness from the API's own status fields, the way `kubectl rollout status` reads them.
//
//   Deployment   observedGeneration caught up; Progressing=False with reason
//                ProgressDeadlineExceeded -> failed; updatedReplicas == spec.replicas, no old
//                replicas left, availableReplicas == updatedReplicas -> ready. Also ready, without
//                waiting for the deployment controller to record it (it can lag pod readiness by
//                a second on a busy control plane), when SummarizeEnvironment has its ReplicaSets
//                and pods: not paused, no minReadySeconds, and spec.replicas Ready pods of the new
//                ReplicaSet (the one whose pod template is the Deployment's, ignoring the
//                pod-template-hash label, as the controller finds it) with no pod of an older
//                ReplicaSet left: the facts the controllers then copy into the status.
//   StatefulSet  observedGeneration caught up; readyReplicas == spec.replicas; with a partition,
//                updatedReplicas >= replicas - partition; else updateRevision == currentRevision
//   DaemonSet    observedGeneration caught up; updatedNumberScheduled and numberAvailable ==
//                desiredNumberScheduled
//   Job          condition Complete (or SuccessCriteriaMet) -> ready; Failed (or FailureTarget)
//                -> failed with its reason and message
//   Pod          (one no controller owns) Ready or Succeeded -> ready; Failed -> failed
//   any Pod      a container waiting with CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
//                InvalidImageName, ErrImageNeverPull, CreateContainerConfigError,
//                CreateContainerError or RunContainerError -> its component failed, with the
//                pod's reason and message
//
// An environment is failed if any component is, progressing if any component is, else ready;
// without its namespace it is absent, and while the namespace terminates it is progressing.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pkg/providers/provider.h"

namespace eph::providers::kubernetes {

// A workload's own status (Deployment, StatefulSet, DaemonSet, Job, Pod). Kinds without a notion
// of readiness are ready.
ComponentStatus EvaluateWorkload(const nlohmann::json& object);

// The reason a pod will not become ready without a change, e.g.
// "pod api-7c9d-x2x: container api: CrashLoopBackOff: back-off 5m0s restarting failed container".
// nullopt if none (or the pod is being deleted).
std::optional<std::string> PodFailure(const nlohmann::json& pod);

// The component (workload name) a pod belongs to: its Deployment (through the ReplicaSet and
// the pod-template-hash label), StatefulSet, DaemonSet or Job; its own name if none.
std::string PodComponent(const nlohmann::json& pod);
// "pod NAME not scheduled: <the scheduler's message>" for a pod the scheduler could not place
// (condition PodScheduled False); nullopt otherwise, and for a terminating pod.
std::optional<std::string> PodNotScheduled(const nlohmann::json& pod);

// Where TrimForCache keeps TemplateDigest() of a Deployment or ReplicaSet whose template it drops.
inline constexpr char kTemplateDigestField[] = "ephTemplateDigest";

// A digest of spec.template without the pod-template-hash label (or the stored one).
std::string TemplateDigest(const nlohmann::json& object);

// The pod-level check described above for a Deployment that its status does not yet show as
// rolled out.
bool DeploymentRolledOutByPods(const nlohmann::json& deployment,
                               const std::vector<const nlohmann::json*>& replica_sets,
                               const std::vector<const nlohmann::json*>& pods);

// The environment's observation from its namespace (null: absent) and the workloads,
// ReplicaSets and pods in it. Components are sorted by name.
Observation SummarizeEnvironment(const nlohmann::json& namespace_object,
                                 const std::vector<nlohmann::json>& objects);

}  // namespace eph::providers::kubernetes
