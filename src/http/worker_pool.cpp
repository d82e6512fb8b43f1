#include "http/worker_pool.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <latch>

namespace gatehouse::http {

WorkerPool::WorkerPool(unsigned threads, std::size_t capacity, WaitObserver on_wait,
                       Priority priority)
    : capacity_(capacity),
      thread_count_(threads == 0 ? 1 : threads),
      on_wait_(std::move(on_wait)),
      priority_(priority) {
  if (threads == 0) threads = 1;
  // Each thread takes its priority before the pool is handed out.
  std::latch started(threads);
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this, &started] { work(started); });
  }
  started.wait();
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

void WorkerPool::work(std::latch& started) {
  // Linux schedules threads one by one: hashing yields to the I/O threads. SCHED_IDLE
  // yields to every busy thread of the scheduling group (the cgroup, or the session's
  // autogroup), not only to this process's: see ServerOptions::worker_priority.
  if (priority_ == Priority::idle) {
    sched_param param{};
    param.sched_priority = 0;
    (void)sched_setscheduler(0, SCHED_IDLE, &param);
  } else if (priority_ == Priority::low) {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  }
  started.count_down();
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
