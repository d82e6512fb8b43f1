// A fixed set of threads running blocking jobs (password hashing) off the I/O
// threads, with a bounded queue: when it is full, try_submit refuses and the caller
// answers 503 instead of queueing without bound. Hashing workers run at a lower
// scheduling priority (SCHED_IDLE or nice +10) so that I/O threads keep serving while
// logins saturate them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

namespace gatehouse::http {

class WorkerPool {
 public:
  // `on_wait`, when set, is told how long each job waited in the queue (on the worker
  // thread that took it).
  using WaitObserver = std::function<void(std::chrono::nanoseconds)>;
  // The threads' scheduling priority: idle (SCHED_IDLE: only CPU that other threads of
  // the process leave idle, see ServerOptions::worker_priority), low (nice 10), normal
  // (for threads that mostly wait on a database).
  enum class Priority { idle, low, normal };
  WorkerPool(unsigned threads, std::size_t capacity, WaitObserver on_wait = {},
             Priority priority = Priority::low);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false when `capacity` jobs are already waiting.
  bool try_submit(std::function<void()> job);
  // Joins the workers, after running what is queued (or dropping it).
  void stop(bool run_pending = true);

  // Jobs waiting for a thread (takes the queue's lock: for probes, not per request).
  [[nodiscard]] std::size_t queued();
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t threads() const noexcept { return thread_count_; }
  // Threads running a job now.
  [[nodiscard]] std::size_t busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

 private:
  void work(std::latch& started);

  struct Job {
    std::function<void()> run;
    std::chrono::steady_clock::time_point queued_at;
  };

  std::size_t capacity_;
  std::size_t thread_count_;
  WaitObserver on_wait_;
  Priority priority_;
  std::atomic<std::size_t> busy_{0};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace gatehouse::http
