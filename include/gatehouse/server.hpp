// Serving an App over HTTP/1.1 (Boost.Beast): one io_context per I/O thread, the
// listener hands sockets out round-robin, each session owns its read-handle-write loop
// with the limits where bytes are read, and offloaded routes run on a bounded worker
// pool that answers 503 when it is full.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/health.hpp"
#include "gatehouse/log.hpp"

namespace gatehouse {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  unsigned io_threads = 0;         // 0: one per core
  unsigned worker_threads = 0;     // 0: one per core
  std::size_t worker_queue = 256;  // waiting offloaded requests before 503
  // The hashing threads' CPU priority. low (nice 10): against the I/O threads hashing
  // keeps about a tenth of a core that requests want; normal: an equal share. idle
  // (SCHED_IDLE): hashing runs only on CPU that every other thread of the scheduling
  // group (the cgroup, or the session's autogroup) leaves idle, and a waking I/O thread
  // takes its core at once; logins then wait, without bound but the queue's, while
  // anything else in that group keeps the cores busy. adaptive (the default): nice 10,
  // and SCHED_IDLE while hashing; a login still hashing after worker_raise_after is
  // aged until it is done: nice 19, then nice 15 after twice that, nice 10 after three
  // times, so no login waits without bound and a lasting flood takes little. Leaving
  // SCHED_IDLE needs RLIMIT_NICE of 10 or more (systemd: LimitNICE=+10) or CAP_SYS_NICE,
  // which root has; without either, adaptive runs as low and the server says so.
  enum class WorkerPriority { idle, low, normal, adaptive };
  WorkerPriority worker_priority = WorkerPriority::adaptive;
  std::chrono::milliseconds worker_raise_after{1000};
  // A request whose store would have to wait for its database on an I/O thread (the
  // store throws StoreWouldBlock, store.hpp) runs again on a pool of store threads,
  // started on first use: this many threads, at most store_queue requests waiting
  // (then 503), none waiting longer than store_queue_timeout (503 instead of running).
  unsigned store_threads = 16;
  std::size_t store_queue = 1024;
  std::chrono::milliseconds store_queue_timeout{5000};
  std::size_t header_limit = 16 * 1024;
  std::size_t max_connections = 10000;  // further connections get a 503 and are closed
  // Connections one client may hold at once (0: no such cap); further ones get a 503 and
  // are closed. A client is an IPv4 address or an IPv6 /64. The trusted proxies in
  // forwarded_allow_ips are not capped: every client behind a proxy shares its address.
  std::size_t max_connections_per_client = 256;
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds shutdown_grace{10};
  // One JSON line per answered request (log.hpp's AccessRecord), buffered off the
  // request path, at info level.
  bool access_log = true;
  // Count every request in app.metrics() (a few relaxed atomic adds per request) and
  // publish the server's gauges (open connections, hash-pool queue) there.
  bool metrics = true;
  // The logger for the access log and the server's events; null: app.logger().
  std::shared_ptr<Logger> logger;
  // When set, SIGHUP runs these hooks and logs what they did; otherwise SIGHUP is
  // left alone.
  std::shared_ptr<ReloadRegistry> reload;
  // Send X-Request-Id on every answer; by default only to clients that sent one (an
  // answer to a FastAPI client stays header for header the reference's).
  bool always_send_request_id = false;
  // Peers whose X-Forwarded-Proto is believed (uvicorn's --forwarded-allow-ips); "*": all.
  std::vector<std::string> forwarded_allow_ips{"127.0.0.1"};
  // Called once the listening socket is bound, with the port (useful with port 0).
  std::function<void(std::uint16_t)> on_listening;
};

// A server the embedding program controls: run() listens and serves on the calling
// thread (and its own I/O and worker threads) until stop(), then stops accepting, lets
// requests in flight finish (up to shutdown_grace), writes out the buffered logs and
// returns. It installs no signal handler unless asked (stop_on_signals(); SIGHUP only
// with ServerOptions::reload). Throws when it cannot listen.
class Server {
 public:
  Server(const App& app, ServerOptions options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  void run();
  // Starts the graceful shutdown; run() then returns. Safe from any thread, at most
  // once useful; before run() it makes run() return as soon as it has started.
  void stop();
  // SIGINT and SIGTERM (caught with Asio's signal_set while run() serves) call stop().
  void stop_on_signals();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The one-line convenience: ignores SIGPIPE for the process (a log reader that goes
// away must not kill the server) and runs a Server until SIGINT or SIGTERM.
void serve(const App& app, const ServerOptions& options);

}  // namespace gatehouse
