// The background poll (see include/gatehouse/poller.hpp).
#include "gatehouse/poller.hpp"

#include <exception>
#include <utility>

namespace gatehouse {

Poller::~Poller() { stop(); }

bool Poller::start(std::chrono::milliseconds interval, std::function<void()> poll) {
  if (thread_.joinable()) return false;
  {
    std::lock_guard lock(mutex_);
    stop_ = false;
    woken_ = false;
  }
  thread_ = std::thread([this, interval, poll = std::move(poll)] {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait_for(lock, interval, [this] { return stop_ || woken_; });
      if (stop_) break;
      woken_ = false;
      lock.unlock();
      try {
        poll();
      } catch (const std::exception&) {
        // The store is unreachable for now: keep what was read last; the next round
        // tries again.
      }
      lock.lock();
    }
  });
  return true;
}

void Poller::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

void Poller::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

}  // namespace gatehouse
