// Readiness interpretation on JSON fixtures of real objects (test/kubernetes/status/): the
// failures kwok cannot produce (CrashLoopBackOff, image pull errors, failed Jobs) are checked here.
#include "pkg/providers/kubernetes/workload_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "test/support/testbed.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

json Fixture(const std::string& name) {
  std::ifstream in(eph::testing::SourceDir() + "/test/kubernetes/status/" + name);
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

TEST(EvaluateWorkloadTest, Deployments) {
  EXPECT_EQ(EvaluateWorkload(Fixture("deployment-available.json")).phase, Phase::kReady);

  ComponentStatus rolling = EvaluateWorkload(Fixture("deployment-rolling.json"));
  EXPECT_EQ(rolling.phase, Phase::kProgressing);
  EXPECT_EQ(rolling.message, "deployment api: 1 of 2 replicas updated");

  ComponentStatus old = EvaluateWorkload(Fixture("deployment-old-replicas.json"));
  EXPECT_EQ(old.phase, Phase::kProgressing);
  EXPECT_EQ(old.message, "deployment api: 1 old replicas pending termination");

  ComponentStatus unseen = EvaluateWorkload(Fixture("deployment-not-observed.json"));
  EXPECT_EQ(unseen.phase, Phase::kProgressing);
  EXPECT_THAT(unseen.message, HasSubstr("waiting for the rollout to start"));

  ComponentStatus unavailable = EvaluateWorkload(Fixture("deployment-unavailable.json"));
  EXPECT_EQ(unavailable.phase, Phase::kProgressing);
  EXPECT_EQ(unavailable.message, "deployment search: 0 of 1 updated replicas available");

  ComponentStatus dead = EvaluateWorkload(Fixture("deployment-progress-deadline-exceeded.json"));
  EXPECT_EQ(dead.phase, Phase::kFailed);
  EXPECT_EQ(dead.message,
            "deployment api: rollout exceeded its progress deadline: ReplicaSet "
            "\"api-7c9d8b6f4\" has timed out progressing.");
}

TEST(EvaluateWorkloadTest, StatefulSetsDaemonSetsAndJobs) {
  EXPECT_EQ(EvaluateWorkload(Fixture("statefulset-ready.json")).phase, Phase::kReady);
  ComponentStatus sts = EvaluateWorkload(Fixture("statefulset-rolling.json"));
  EXPECT_EQ(sts.phase, Phase::kProgressing);
  EXPECT_EQ(sts.message, "statefulset redis: 1 of 3 pods updated");

  EXPECT_EQ(EvaluateWorkload(Fixture("daemonset-ready.json")).phase, Phase::kReady);
  ComponentStatus ds = EvaluateWorkload(Fixture("daemonset-rolling.json"));
  EXPECT_EQ(ds.phase, Phase::kProgressing);
  EXPECT_EQ(ds.message, "daemonset log-shipper: 1 of 3 pods updated");

  EXPECT_EQ(EvaluateWorkload(Fixture("job-complete.json")).phase, Phase::kReady);
  EXPECT_EQ(EvaluateWorkload(Fixture("job-running.json")).phase, Phase::kProgressing);
  ComponentStatus failed = EvaluateWorkload(Fixture("job-failed.json"));
  EXPECT_EQ(failed.phase, Phase::kFailed);
  EXPECT_EQ(failed.message,
            "job db-migrate failed: BackoffLimitExceeded: Job has reached the specified backoff "
            "limit");
}

TEST(PodFailureTest, NamesThePodTheContainerTheReasonAndTheMessage) {
  EXPECT_EQ(PodFailure(Fixture("pod-crashloopbackoff.json")),
            "pod api-7c9d8b6f4-x2x9q: container api: CrashLoopBackOff: back-off 40s restarting "
            "failed container=api pod=api-7c9d8b6f4-x2x9q_eph-shop-42"
            "(9a1e2b3c-7d4f-4e5a-8b6c-1d2e3f4a5b6c) (last exit code 1, Error)");
  EXPECT_THAT(PodFailure(Fixture("pod-imagepullbackoff.json")).value_or(""),
              StartsWith("pod api-7c9d8b6f4-mm4kd: container api: ImagePullBackOff: Back-off "
                         "pulling image \"ghcr.io/acme/shop-api:pr-42\""));
  EXPECT_THAT(PodFailure(Fixture("pod-errimagepull.json")).value_or(""),
              HasSubstr("ErrImagePull: rpc error: code = NotFound"));
  EXPECT_THAT(PodFailure(Fixture("pod-init-crashloopbackoff.json")).value_or(""),
              HasSubstr("container migrate: CrashLoopBackOff"));
  // Not failures: still starting, ready, unschedulable (the Deployment's deadline decides), or
  // crash-looping on its way out.
  EXPECT_EQ(PodFailure(Fixture("pod-containercreating.json")), std::nullopt);
  EXPECT_EQ(PodFailure(Fixture("pod-ready.json")), std::nullopt);
  EXPECT_EQ(PodFailure(Fixture("pod-unschedulable.json")), std::nullopt);
  EXPECT_EQ(PodFailure(Fixture("pod-crashloopbackoff-terminating.json")), std::nullopt);
}

TEST(PodComponentTest, FollowsTheReplicaSetToItsDeployment) {
  EXPECT_EQ(PodComponent(Fixture("pod-crashloopbackoff.json")), "api");
  EXPECT_EQ(PodComponent(Fixture("pod-init-crashloopbackoff.json")), "checkout");
  json bare = Fixture("pod-ready.json");
  bare["metadata"].erase("ownerReferences");
  EXPECT_EQ(PodComponent(bare), "cart-6b7c8d9f0-z9y8x");
}

TEST(SummarizeEnvironmentTest, ReadyWhenEveryWorkloadIs) {
  Observation o =
      SummarizeEnvironment(Fixture("namespace-active.json"),
                           {Fixture("deployment-available.json"), Fixture("pod-ready.json"),
                            Fixture("statefulset-ready.json"), Fixture("job-complete.json")});
  EXPECT_EQ(o.phase, Phase::kReady);
  EXPECT_EQ(o.message, "");
  ASSERT_EQ(o.components.size(), 3u);
  EXPECT_EQ(o.components[0].name, "cart");
  EXPECT_EQ(o.components[1].name, "db-migrate");
  EXPECT_EQ(o.components[2].name, "postgres");
}

TEST(SummarizeEnvironmentTest, ACrashLoopingPodFailsItsDeploymentWithThePodsReason) {
  Observation o = SummarizeEnvironment(
      Fixture("namespace-active.json"),
      {Fixture("deployment-rolling.json"), Fixture("pod-crashloopbackoff.json"),
       Fixture("deployment-available.json"), Fixture("pod-ready.json")});
  EXPECT_EQ(o.phase, Phase::kFailed);
  EXPECT_THAT(o.message, StartsWith("pod api-7c9d8b6f4-x2x9q: container api: CrashLoopBackOff"));
  ASSERT_EQ(o.components.size(), 2u);
  EXPECT_EQ(o.components[0].name, "api");
  EXPECT_EQ(o.components[0].phase, Phase::kFailed);
  EXPECT_EQ(o.components[1].phase, Phase::kReady);
}

TEST(SummarizeEnvironmentTest, ProgressingNamesWhatItWaitsFor) {
  Observation o = SummarizeEnvironment(
      Fixture("namespace-active.json"),
      {Fixture("deployment-unavailable.json"), Fixture("pod-unschedulable.json"),
       Fixture("deployment-available.json")});
  EXPECT_EQ(o.phase, Phase::kProgressing);
  // The pod the scheduler cannot place says why the Deployment waits.
  EXPECT_EQ(o.message,
            "waiting for deployment search: 0 of 1 updated replicas available (pod " +
                Fixture("pod-unschedulable.json")["metadata"]["name"].get<std::string>() +
                " not scheduled: 0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 "
                "nodes are available: 3 No preemption victims found for incoming pod.)");
}

TEST(SummarizeEnvironmentTest, PodsTheReplicaSetCannotCreateSayWhy) {
  json d = Fixture("deployment-unavailable.json");
  d["status"]["updatedReplicas"] = 0;
  d["status"]["conditions"].push_back(
      {{"type", "ReplicaFailure"},
       {"status", "True"},
       {"reason", "FailedCreate"},
       {"message",
        "pods \"search-84c6f7d5b-abcde\" is forbidden: exceeded quota: eph-quota, requested: "
        "pods=1, used: pods=50, limited: pods=50"}});
  Observation o = SummarizeEnvironment(Fixture("namespace-active.json"), {d});
  EXPECT_EQ(o.phase, Phase::kProgressing);
  EXPECT_THAT(o.message, HasSubstr("deployment search: 0 of 1 replicas updated (pods "));
  EXPECT_THAT(o.message, HasSubstr("exceeded quota: eph-quota"));
}

TEST(SummarizeEnvironmentTest, AbsentAndTerminatingNamespaces) {
  EXPECT_EQ(SummarizeEnvironment(nullptr, {}).phase, Phase::kAbsent);
  Observation o = SummarizeEnvironment(Fixture("namespace-terminating.json"),
                                       {Fixture("deployment-available.json")});
  EXPECT_EQ(o.phase, Phase::kProgressing);
  EXPECT_EQ(o.message, "namespace eph-shop-42 is being deleted");
  // An environment with no workloads (only ConfigMaps, say) is ready once it exists.
  EXPECT_EQ(SummarizeEnvironment(Fixture("namespace-active.json"), {}).phase, Phase::kReady);
}

TEST(SummarizeEnvironmentTest, AFailedJobFailsTheEnvironment) {
  Observation o =
      SummarizeEnvironment(Fixture("namespace-active.json"),
                           {Fixture("job-failed.json"), Fixture("deployment-available.json")});
  EXPECT_EQ(o.phase, Phase::kFailed);
  EXPECT_THAT(o.message, HasSubstr("job db-migrate failed: BackoffLimitExceeded"));
}

// A rollout whose pods are all Ready before the controllers have copied that into the
// ReplicaSet's and the Deployment's status.
class RolledOutByPodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    deployment_ = Fixture("deployment-rolling.json");  // generation 3 observed, 1 of 2 updated
    deployment_["metadata"]["uid"] = "d-uid";
    deployment_["spec"]["template"] = Template("pr-42");
    new_rs_ = ReplicaSet("api-7c9d8b6f4", "pr-42");
    old_rs_ = ReplicaSet("api-6d5c4b3a2", "pr-41");
  }
  static json Template(const std::string& tag, const std::string& hash = "") {
    json t = {{"metadata", {{"labels", {{"app.kubernetes.io/name", "api"}}}}},
              {"spec",
               {{"containers",
                 json::array({{{"name", "api"}, {"image", "ghcr.io/acme/shop-api:" + tag}}})}}}};
    if (!hash.empty()) t["metadata"]["labels"]["pod-template-hash"] = hash;
    return t;
  }
  static json ReplicaSet(const std::string& name, const std::string& tag) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "ReplicaSet"},
            {"metadata",
             {{"name", name},
              {"ownerReferences", json::array({{{"apiVersion", "apps/v1"},
                                                {"kind", "Deployment"},
                                                {"name", "api"},
                                                {"uid", "d-uid"},
                                                {"controller", true}}})}}},
            {"spec", {{"template", Template(tag, name.substr(name.rfind('-') + 1))}}}};
  }
  static json PodOf(const std::string& rs, const std::string& suffix, bool ready) {
    json p = Fixture("pod-ready.json");
    const std::string hash = rs.substr(rs.rfind('-') + 1);
    p["metadata"]["name"] = rs + "-" + suffix;
    p["metadata"]["labels"]["pod-template-hash"] = hash;
    p["metadata"]["ownerReferences"][0]["name"] = rs;
    if (!ready) p["status"]["conditions"][2]["status"] = "False";
    return p;
  }
  Observation Summarize(const std::vector<json>& pods) {
    std::vector<json> objects = {deployment_, new_rs_, old_rs_};
    objects.insert(objects.end(), pods.begin(), pods.end());
    return SummarizeEnvironment(Fixture("namespace-active.json"), objects);
  }
  json deployment_, new_rs_, old_rs_;
};

TEST_F(RolledOutByPodsTest, ReadyOnceEveryNewPodIsReadyAndNoOldPodIsLeft) {
  const json new1 = PodOf("api-7c9d8b6f4", "a", true);
  const json new2 = PodOf("api-7c9d8b6f4", "b", true);
  const json old1 = PodOf("api-6d5c4b3a2", "z", true);
  EXPECT_EQ(Summarize({new1, new2, old1}).phase, Phase::kProgressing);
  EXPECT_EQ(Summarize({new1, PodOf("api-7c9d8b6f4", "b", false)}).phase, Phase::kProgressing);
  EXPECT_EQ(Summarize({new1}).phase, Phase::kProgressing);  // 1 of 2
  json leaving = old1;
  leaving["metadata"]["deletionTimestamp"] = "2026-03-02T10:20:00Z";
  Observation o = Summarize({new1, new2, leaving});
  EXPECT_EQ(o.phase, Phase::kReady) << o.message;
}

TEST_F(RolledOutByPodsTest, NotForAnOlderTemplatePausedRolloutsOrMinReadySeconds) {
  const std::vector<json> pods = {PodOf("api-7c9d8b6f4", "a", true),
                                  PodOf("api-7c9d8b6f4", "b", true)};
  ASSERT_EQ(Summarize(pods).phase, Phase::kReady);
  // A newer spec whose ReplicaSet the controller has not made yet.
  deployment_["metadata"]["generation"] = 4;
  deployment_["spec"]["template"] = Template("pr-43");
  EXPECT_EQ(Summarize(pods).phase, Phase::kProgressing);
  deployment_["spec"]["template"] = Template("pr-42");
  deployment_["spec"]["minReadySeconds"] = 10;
  EXPECT_EQ(Summarize(pods).phase, Phase::kProgressing);
  deployment_["spec"].erase("minReadySeconds");
  deployment_["spec"]["paused"] = true;
  EXPECT_EQ(Summarize(pods).phase, Phase::kProgressing);
  deployment_["spec"].erase("paused");
  // The digest survives trimming for the cache.
  json trimmed_rs = new_rs_;
  trimmed_rs[kTemplateDigestField] = TemplateDigest(new_rs_);
  trimmed_rs["spec"].erase("template");
  new_rs_ = trimmed_rs;
  EXPECT_EQ(Summarize(pods).phase, Phase::kReady);
}

}  // namespace
}  // namespace eph::providers::kubernetes
