// A background poll: calls a function every interval on a thread of its own until
// stopped. The client registry and the deny-list use it to pick up what other
// instances (or the CLI) wrote to the store.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace gatehouse {

class Poller {
 public:
  Poller() = default;
  ~Poller();  // stop()
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Calls `poll` every `interval`, the first time one interval from now. An exception
  // from `poll` ends that round only: the store may be unreachable for a while, and the
  // next round tries again. Returns false, and changes nothing, when already running.
  bool start(std::chrono::milliseconds interval, std::function<void()> poll);
  // Wakes the thread and joins it: a round in progress finishes, no new one starts.
  // Returns at once when not running; start() may be called again afterwards.
  void stop();
  // Starts the next round now instead of at the end of the interval (when running).
  void wake();
  [[nodiscard]] bool running() const noexcept { return thread_.joinable(); }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace gatehouse
