// OpenDashboard: what ephd serves at /, the dashboard built into it (embedded.h) or a directory.
//
// Thread-safety: call once at start-up; the files it returns are immutable.
#pragma once

#include <memory>
#include <string>

#include "pkg/dashboard/dashboard.h"

namespace eph::dashboard {

// The dashboard built into ephd, or the directory `web_dir` names when not empty (--web-dir,
// for working on the page). Logs which, or why it is missing (then / says so).
std::shared_ptr<const DashboardFiles> OpenDashboard(const std::string& web_dir);

}  // namespace eph::dashboard
