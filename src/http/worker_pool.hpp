// A fixed set of threads running blocking jobs (password hashing) off the I/O
// threads, with a bounded queue: when it is full, try_submit refuses and the caller
// answers 503 instead of queueing without bound. Workers run at a lower scheduling
// priority (nice +10) so that I/O threads keep serving while logins saturate them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gatehouse::http {

class WorkerPool {
 public:
  WorkerPool(unsigned threads, std::size_t capacity);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false when `capacity` jobs are already waiting.
  bool try_submit(std::function<void()> job);
  // Joins the workers, after running what is queued (or dropping it).
  void stop(bool run_pending = true);

 private:
  void work();

  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace gatehouse::http
