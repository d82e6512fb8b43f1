// Operating a gatehouse service: health and readiness checks, /metrics, /healthz and
// /readyz routes, a reload registry run on SIGHUP, and a store wrapper that times
// every store operation.
#pragma once

#include <memory>
#include <string>

#include "gatehouse/app.hpp"
#include "gatehouse/health.hpp"
#include "gatehouse/metrics.hpp"
#include "gatehouse/store.hpp"

namespace gatehouse {

struct OperationsOptions {
  bool metrics = true;             // GET /metrics
  bool health = true;              // GET /healthz and GET /readyz
  bool include_in_schema = false;  // list them in /openapi.json (FastAPI's has none)
  std::string metrics_path = "/metrics";
  std::string healthz_path = "/healthz";
  std::string readyz_path = "/readyz";
};

// Declares the operations routes on `app`: /metrics renders app.metrics();
// /healthz answers 200 {"status":"ok"} while the process serves; /readyz runs
// app.readiness() and answers 200 {"status":"ready","checks":{name:{ok,detail}}} or
// 503 {"status":"not ready",...}.
void install_operations(App& app, const OperationsOptions& options = {});

// Wraps `store` so each operation is timed into metrics (gatehouse_store_*) and a
// throwing operation counts as an error (then rethrows).
[[nodiscard]] std::shared_ptr<UserStore> instrument_store(std::shared_ptr<UserStore> store,
                                                          std::shared_ptr<Metrics> metrics);

}  // namespace gatehouse
