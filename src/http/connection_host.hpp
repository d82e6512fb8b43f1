// The server's per-connection code without a listener: sessions on sockets that are
// already connected, run on the caller's thread. serve() is this plus a listener,
// I/O threads and signals; the request-path fuzzer (fuzz/fuzz_session.cpp) drives the
// same Session code through it, on one end of a socketpair.
#pragma once

#include <boost/asio/io_context.hpp>

#include <memory>

#include "gatehouse/server.hpp"

namespace gatehouse::http {

class ConnectionHost {
 public:
  // `app` and `options` must outlive the host. Offloaded routes run on a worker pool
  // of options.worker_threads threads (0: one).
  ConnectionHost(const App& app, const ServerOptions& options);
  ~ConnectionHost();
  ConnectionHost(const ConnectionHost&) = delete;
  ConnectionHost& operator=(const ConnectionHost&) = delete;

  // The I/O context the sessions run on (the caller may run its own I/O on it too).
  boost::asio::io_context& context();
  // Starts a session on `fd`, a connected stream socket the session takes over.
  void start(int fd);
  // Runs the context until every session has ended (offloaded work included).
  void run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gatehouse::http
