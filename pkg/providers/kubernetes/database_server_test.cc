#include "pkg/providers/kubernetes/database_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::providers::kubernetes {
namespace {

using json = nlohmann::json;

TEST(DatabaseServerObjectsTest, SecretServiceAndStatefulSetFollowingThePostgresImageContract) {
  const std::vector<json> objects =
      BuildDatabaseServerObjects({.name = "pg", .image = "postgres:15", .password = "s3cret"});
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[0]["kind"], "Secret");
  EXPECT_EQ(objects[0]["metadata"]["name"], "pg-admin");
  EXPECT_EQ(objects[0]["stringData"]["POSTGRES_PASSWORD"], "s3cret");
  EXPECT_EQ(objects[1]["kind"], "Service");
  EXPECT_EQ(objects[1]["spec"]["selector"]["eph.dev/database"], "pg");
  EXPECT_EQ(objects[1]["spec"]["ports"][0]["port"], 5432);
  const json& sts = objects[2];
  EXPECT_EQ(sts["kind"], "StatefulSet");
  EXPECT_EQ(sts["spec"]["selector"]["matchLabels"], sts["spec"]["template"]["metadata"]["labels"]);
  const json& c = sts["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "postgres:15");
  EXPECT_EQ(c["env"][0], (json{{"name", "POSTGRES_USER"}, {"value", "eph_admin"}}));
  // The password reaches the pod from the Secret, never inline.
  EXPECT_EQ(c["env"][3]["valueFrom"]["secretKeyRef"]["name"], "pg-admin");
  EXPECT_EQ(sts.dump().find("s3cret"), std::string::npos);
  EXPECT_EQ(c["readinessProbe"]["exec"]["command"][0], "pg_isready");
  EXPECT_TRUE(sts["spec"]["template"]["spec"]["volumes"][0].contains("emptyDir"));
  for (const json& o : objects) EXPECT_EQ(o["metadata"]["labels"]["eph.dev/database"], "pg");
}

TEST(DatabaseServerObjectsTest, AClientNamespaceIsAdmittedToThePortOnly) {
  const std::vector<json> objects = BuildDatabaseServerObjects(
      {.name = "db", .image = "postgres:16", .password = "x", .client_namespace = "eph-system"});
  ASSERT_EQ(objects.size(), 4u);
  const json& policy = objects[3];
  EXPECT_EQ(policy["kind"], "NetworkPolicy");
  EXPECT_EQ(policy["spec"]["podSelector"]["matchLabels"]["eph.dev/database"], "db");
  EXPECT_EQ(policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
                  ["kubernetes.io/metadata.name"],
            "eph-system");
  EXPECT_EQ(policy["spec"]["ingress"][0]["ports"][0]["port"], 5432);
}

}  // namespace
}  // namespace eph::providers::kubernetes
