#include "http/worker_pool.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <latch>
#include <optional>

namespace gatehouse::http {

namespace {

int this_tid() { return static_cast<int>(syscall(SYS_gettid)); }

bool set_nice(int tid, int nice) {
  return setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) == 0;
}

bool set_policy(int tid, int policy) {
  sched_param param{};
  param.sched_priority = 0;
  return sched_setscheduler(tid, policy, &param) == 0;
}

// Whether a thread of this process may leave SCHED_IDLE for SCHED_OTHER and come back
// to nice 10: the kernel allows it when nice 10 is within RLIMIT_NICE, or with
// CAP_SYS_NICE. Tried on a thread of its own, with the sequence the workers and the
// guard use.
bool may_leave_idle_at_nice_ten() {
  bool ok = false;
  std::thread([&ok] {
    const int tid = this_tid();
    ok = set_nice(tid, 10) && set_policy(0, SCHED_IDLE) &&
         set_nice(tid, WorkerPool::kAgingNice[0]) && set_policy(0, SCHED_OTHER) &&
         set_nice(tid, 10) && sched_getscheduler(0) == SCHED_OTHER &&
         (errno = 0, getpriority(PRIO_PROCESS, static_cast<id_t>(tid))) == 10;
  }).join();
  return ok;
}

}  // namespace

WorkerPool::WorkerPool(unsigned threads, std::size_t capacity, WaitObserver on_wait,
                       Priority priority, std::chrono::milliseconds raise_after,
                       StepObserver on_step)
    : capacity_(capacity),
      thread_count_(threads == 0 ? 1 : threads),
      on_wait_(std::move(on_wait)),
      on_step_(std::move(on_step)),
      priority_(priority),
      raise_after_(raise_after) {
  if (threads == 0) threads = 1;
  if (priority_ == Priority::adaptive && !may_leave_idle_at_nice_ten()) {
    priority_ = Priority::low;
    adaptive_refused_ = true;
  }
  if (priority_ == Priority::adaptive) slots_.resize(threads);
  // Each thread takes its priority before the pool is handed out.
  std::latch started(threads);
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this, &started, i] { work(started, i); });
  }
  started.wait();
  if (priority_ == Priority::adaptive) guard_ = std::thread([this] { guard(); });
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
  {
    std::lock_guard lock(guard_mutex_);
    guard_stopping_ = true;
  }
  guard_wake_.notify_all();
  if (guard_.joinable()) guard_.join();
}

std::size_t WorkerPool::queued() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void WorkerPool::work(std::latch& started, std::size_t index) {
  // Linux schedules threads one by one: hashing yields to the I/O threads. SCHED_IDLE
  // yields to every busy thread of the scheduling group (the cgroup, or the session's
  // autogroup), not only to this process's: see ServerOptions::worker_priority. A
  // SCHED_IDLE thread also gives its core up at once to a waking I/O thread, where a
  // nice 10 one may finish its time slice first.
  const int tid = this_tid();
  const bool adaptive = priority_ == Priority::adaptive;
  if (priority_ == Priority::idle) {
    (void)set_policy(0, SCHED_IDLE);
  } else if (priority_ == Priority::low || adaptive) {
    (void)set_nice(tid, 10);
  }
  if (adaptive) {
    std::lock_guard lock(guard_mutex_);
    slots_[index].tid = tid;
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
    if (adaptive) {
      run_adaptive(job, index);
    } else {
      job.run();
    }
    busy_.fetch_sub(1, std::memory_order_relaxed);
  }
}

// adaptive: the thread waits and takes jobs at nice 10 (so it never holds the queue's
// lock as SCHED_IDLE, and never waits for idle CPU to take a job), and hashes under
// SCHED_IDLE, aged by guard() while the job runs long.
void WorkerPool::run_adaptive(Job& job, std::size_t index) {
  Slot& slot = slots_[index];
  bool wake_guard = false;
  {
    std::lock_guard lock(guard_mutex_);
    slot.started = std::chrono::steady_clock::now();
    slot.steps = 0;
    wake_guard = guard_sleeping_;
  }
  if (wake_guard) guard_wake_.notify_one();
  (void)set_policy(0, SCHED_IDLE);
  {
    // The guard may have raised this job before the line above took effect (it sets the
    // nice value, which SCHED_IDLE keeps).
    std::lock_guard lock(guard_mutex_);
    if (slot.steps > 0) (void)set_policy(0, SCHED_OTHER);
  }
  job.run();
  std::size_t steps = 0;
  {
    // Under the guard's lock: the guard never changes this thread between here and the
    // next job.
    std::lock_guard lock(guard_mutex_);
    steps = slot.steps;
    slot.started = {};
    slot.steps = 0;
  }
  (void)set_policy(0, SCHED_OTHER);
  // Back to nice 10 whatever step the job reached (after the last one it should be there
  // already, unless the kernel refused that step).
  if (steps > 0) (void)set_nice(slot.tid, 10);
}

// adaptive: ages a worker whose job runs long. After raise_after_ its thread leaves
// SCHED_IDLE for SCHED_OTHER at nice 19 (about 1.5 % of a core beside a busy nice-0
// thread), after twice that nice 15, after three times nice 10 (about 10 %), so that a
// login always makes progress however busy the rest of the scheduling group keeps the
// cores, and takes little from them where it finishes soon. Sleeps while no job runs,
// else until the next step falls due.
void WorkerPool::guard() {
  // When the slot's next step falls due: raise_after_ times the steps taken plus one.
  const auto due_at = [this](const Slot& slot) {
    return slot.started + raise_after_ * static_cast<int>(slot.steps + 1);
  };
  std::unique_lock lock(guard_mutex_);
  while (!guard_stopping_) {
    const auto now = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> next;
    for (auto& slot : slots_) {
      if (slot.started == std::chrono::steady_clock::time_point{}) continue;
      if (slot.steps >= std::size(kAgingNice)) continue;
      if (due_at(slot) <= now) {
        // One step per due time, whether or not the kernel agreed.
        const std::size_t step = slot.steps++;
        bool ok = set_nice(slot.tid, kAgingNice[step]);
        if (step == 0) {
          ok = set_policy(slot.tid, SCHED_OTHER) && ok;
          if (ok) raised_.fetch_add(1, std::memory_order_relaxed);
        }
        if (on_step_) {
          try {
            on_step_(step, ok);
          } catch (...) {  // an observer's failure (bad_alloc) must not stop the guard
          }
        }
      }
      if (slot.steps < std::size(kAgingNice)) {
        const auto due = due_at(slot);
        if (!next || due < *next) next = due;
      }
    }
    if (next) {
      guard_wake_.wait_until(lock, *next);
    } else {
      guard_sleeping_ = true;
      guard_wake_.wait(lock);
      guard_sleeping_ = false;
    }
  }
}

}  // namespace gatehouse::http
