#include "pkg/providers/kubernetes/database_server.h"

namespace eph::providers::kubernetes {

using json = nlohmann::json;

std::string DatabaseSecretName(const std::string& name) { return name + "-admin"; }

std::vector<json> BuildDatabaseServerObjects(const DatabaseServerSpec& spec) {
  const json selector = {{kDatabaseLabel, spec.name}};
  std::vector<json> out;
  out.push_back({{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", DatabaseSecretName(spec.name)}, {"labels", selector}}},
                 {"type", "Opaque"},
                 {"stringData", {{"POSTGRES_PASSWORD", spec.password}}}});
  out.push_back(
      {{"apiVersion", "v1"},
       {"kind", "Service"},
       {"metadata", {{"name", spec.name}, {"labels", selector}}},
       {"spec",
        {{"selector", selector},
         {"ports", json::array({{{"name", "postgres"}, {"port", 5432}, {"targetPort", 5432}}})}}}});
  const json container = {
      {"name", "postgres"},
      {"image", spec.image},
      {"ports", json::array({{{"name", "postgres"}, {"containerPort", 5432}}})},
      {"env",
       json::array(
           {{{"name", "POSTGRES_USER"}, {"value", kDatabaseAdminUser}},
            {{"name", "POSTGRES_DB"}, {"value", "postgres"}},
            {{"name", "PGDATA"}, {"value", "/var/lib/postgresql/data/pgdata"}},
            {{"name", "POSTGRES_PASSWORD"},
             {"valueFrom",
              {{"secretKeyRef",
                {{"name", DatabaseSecretName(spec.name)}, {"key", "POSTGRES_PASSWORD"}}}}}}})},
      {"readinessProbe",
       {{"exec",
         {{"command", json::array({"pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U",
                                   kDatabaseAdminUser, "-d", "postgres"})}}},
        {"periodSeconds", 2},
        {"failureThreshold", 3}}},
      {"volumeMounts",
       json::array({{{"name", "data"}, {"mountPath", "/var/lib/postgresql/data"}}})}};
  out.push_back(
      {{"apiVersion", "apps/v1"},
       {"kind", "StatefulSet"},
       {"metadata", {{"name", spec.name}, {"labels", selector}}},
       {"spec",
        {{"serviceName", spec.name},
         {"replicas", 1},
         {"selector", {{"matchLabels", selector}}},
         {"template",
          {{"metadata", {{"labels", selector}}},
           {"spec",
            {{"containers", json::array({container})},
             {"volumes", json::array({{{"name", "data"}, {"emptyDir", json::object()}}})}}}}}}}});
  if (!spec.client_namespace.empty()) {
    out.push_back(
        {{"apiVersion", "networking.k8s.io/v1"},
         {"kind", "NetworkPolicy"},
         {"metadata", {{"name", spec.name + "-clients"}, {"labels", selector}}},
         {"spec",
          {{"podSelector", {{"matchLabels", selector}}},
           {"policyTypes", json::array({"Ingress"})},
           {"ingress",
            json::array({{{"from", json::array({{{"namespaceSelector",
                                                  {{"matchLabels",
                                                    {{"kubernetes.io/metadata.name",
                                                      spec.client_namespace}}}}}}})},
                          {"ports", json::array({{{"port", 5432}, {"protocol", "TCP"}}})}}})}}}});
  }
  return out;
}

}  // namespace eph::providers::kubernetes
