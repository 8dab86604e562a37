#include "pkg/database/managed_objects.h"

#include <gtest/gtest.h>

namespace eph::database {
namespace {

TEST(MarkerTest, EveryMarkerParsesBackToItsWords) {
  std::optional<Marker> env = ParseMarker(EnvMarker("pr-7", "acme/shop", "inst-1", "orders"));
  ASSERT_TRUE(env);
  EXPECT_EQ((*env)["environment"], "pr-7");
  EXPECT_EQ((*env)["project"], "acme/shop");
  EXPECT_EQ((*env)["installation"], "inst-1");
  EXPECT_EQ((*env)["instance"], "orders");
  EXPECT_EQ(EnvMarker("pr-7", "p", "", ""), "eph:managed environment=pr-7 project=p");

  std::optional<Marker> tpl = ParseMarker(TemplateMarker("p", "abc"));
  ASSERT_TRUE(tpl);
  EXPECT_EQ(tpl->count("template"), 1u);
  EXPECT_EQ((*tpl)["hash"], "abc");
  std::optional<Marker> spare = ParseMarker(SpareMarker("p", "eph_tpl_x", ""));
  ASSERT_TRUE(spare);
  EXPECT_EQ(spare->count("spare"), 1u);
  EXPECT_EQ((*spare)["of"], "eph_tpl_x");
}

TEST(MarkerTest, OtherCommentsAreNotMarkers) {
  EXPECT_FALSE(ParseMarker(""));
  EXPECT_FALSE(ParseMarker("managed by eph"));
  EXPECT_FALSE(ParseMarker("eph:managedx environment=a"));
}

TEST(MarkerTest, MarksInstanceNeedsTheEnvironmentAndTheInstance) {
  ObjectInfo info;
  info.exists = true;
  info.marker = ParseMarker(EnvMarker("a", "p", "", ""));
  EXPECT_TRUE(MarksInstance(info, "a", ""));
  EXPECT_FALSE(MarksInstance(info, "a", "orders"));
  EXPECT_FALSE(MarksInstance(info, "b", ""));
  info.marker = ParseMarker(EnvMarker("a", "p", "", "orders"));
  EXPECT_TRUE(MarksInstance(info, "a", "orders"));
  EXPECT_FALSE(MarksInstance(info, "a", ""));
  info.marker.reset();
  EXPECT_FALSE(MarksInstance(info, "a", ""));
}

TEST(NamesTest, DnsLabelsAndProjects) {
  EXPECT_TRUE(IsDnsLabel("shop-pr-7"));
  EXPECT_FALSE(IsDnsLabel("-a"));
  EXPECT_FALSE(IsDnsLabel("A"));
  EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
  EXPECT_TRUE(ValidProject("acme/shop.v2_x"));
  EXPECT_FALSE(ValidProject("acme shop"));
  EXPECT_FALSE(ValidProject(""));
}

}  // namespace
}  // namespace eph::database
