// The objects of an environment's own PostgreSQL server on Kubernetes (eph.yaml
// `database.instances[].placement: environment`): pure functions over JSON, unit-tested without a
// cluster; KubernetesProvider::EnsureDatabaseServer applies them.
//
//  - Secret `<name>-admin`: the superuser's password (POSTGRES_PASSWORD), made once.
//  - Service `<name>`: ClusterIP on 5432, the host name the app and ephd use.
//  - StatefulSet `<name>`: one replica of the image, following the official postgres image's
//    contract (POSTGRES_USER=eph_admin, POSTGRES_DB=postgres, PGDATA under the data volume), ready
//    when `pg_isready` answers. The data lives in an emptyDir: it lasts as long as the pod.
//  - NetworkPolicy `<name>-clients` (when a client namespace is set): admits ephd's namespace to
//    5432, past the environment's isolating policy.
// Every object carries kDatabaseLabel=<name>, which keeps Apply's prune away from them.
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace eph::providers::kubernetes {

inline constexpr char kDatabaseLabel[] = "eph.dev/database";
inline constexpr char kDatabaseAdminUser[] = "eph_admin";

struct DatabaseServerSpec {
  std::string name;      // the instance: Service, StatefulSet and host name
  std::string image;     // e.g. postgres:15
  std::string password;  // the superuser's; secret
  // The namespace ephd runs in, admitted to 5432 (empty: no extra NetworkPolicy).
  std::string client_namespace;
};

// Secret, Service, StatefulSet (and NetworkPolicy), in that order, without namespace or Eph's
// labels (KubeApplier::Prepare adds those).
std::vector<nlohmann::json> BuildDatabaseServerObjects(const DatabaseServerSpec& spec);

// "<name>-admin".
std::string DatabaseSecretName(const std::string& name);

}  // namespace eph::providers::kubernetes
