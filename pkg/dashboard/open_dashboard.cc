#include "pkg/dashboard/open_dashboard.h"

#include <spdlog/spdlog.h>

#include "pkg/dashboard/embedded.h"

namespace eph::dashboard {

std::shared_ptr<const DashboardFiles> OpenDashboard(const std::string& web_dir) {
  std::shared_ptr<const DashboardFiles> files;
  if (web_dir.empty()) {
    files = std::make_shared<EmbeddedDashboard>(EmbeddedDashboardFiles(),
                                                std::string(EmbeddedDashboardAbsence()));
  } else {
    files = std::make_shared<DirectoryDashboard>(web_dir);
  }
  if (std::string missing = files->Missing(); !missing.empty()) {
    spdlog::warn("ephd: dashboard: missing, / says so. {}", missing);
  } else {
    spdlog::info("ephd: dashboard: {} at /", files->Describe());
  }
  return files;
}

}  // namespace eph::dashboard
