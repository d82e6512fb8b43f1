// Threads that must not block. The HTTP server's I/O threads hold a BlockingForbidden;
// a component that would have to wait there (a store's round trip to a remote
// database) throws WouldBlock instead, and the server runs the request again on a pool
// of threads where waiting is allowed. The HTTP layer owns this contract, so that it
// needs to know nothing about what may block (store.hpp names it StoreWouldBlock).
#pragma once

namespace gatehouse {

// Thrown, on a thread that holds a BlockingForbidden, by something that would have to
// wait. The server catches it and runs the whole request again where waiting is
// allowed. Deliberately not a std::exception, so that no `catch (const
// std::exception&)` on the way turns it into an error.
struct WouldBlock {};

// While one exists on a thread, stores that would wait for a remote database throw
// WouldBlock there instead (an embedded SQLite store answers as always). The server
// holds one on each I/O thread.
class BlockingForbidden {
 public:
  BlockingForbidden();
  ~BlockingForbidden();
  BlockingForbidden(const BlockingForbidden&) = delete;
  BlockingForbidden& operator=(const BlockingForbidden&) = delete;
  // True on a thread where a BlockingForbidden exists.
  [[nodiscard]] static bool active() noexcept;

 private:
  bool previous_;
};

}  // namespace gatehouse
