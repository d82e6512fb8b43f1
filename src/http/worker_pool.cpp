#include "http/worker_pool.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace gatehouse::http {

WorkerPool::WorkerPool(unsigned threads, std::size_t capacity, WaitObserver on_wait, int nice)
    : capacity_(capacity),
      thread_count_(threads == 0 ? 1 : threads),
      on_wait_(std::move(on_wait)),
      nice_(nice) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::try_submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= capacity_) return false;
    queue_.push_back(Job{std::move(job), std::chrono::steady_clock::now()});
  }
  ready_.notify_one();
  return true;
}

void WorkerPool::stop(bool run_pending) {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mutex_);
    if (!run_pending) dropped.swap(queue_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

std::size_t WorkerPool::queued() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void WorkerPool::work() {
  // Linux applies nice values per thread: hashing yields to the I/O threads.
  if (nice_ != 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice_);
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (on_wait_) on_wait_(std::chrono::steady_clock::now() - job.queued_at);
    busy_.fetch_add(1, std::memory_order_relaxed);
    job.run();
    busy_.fetch_sub(1, std::memory_order_relaxed);
  }
}

}  // namespace gatehouse::http
