// A fixed set of threads running blocking jobs (password hashing) off the I/O
// threads, with a bounded queue: when it is full, try_submit refuses and the caller
// answers 503 instead of queueing without bound. Hashing workers run at a lower
// scheduling priority (SCHED_IDLE, nice +10, or SCHED_IDLE raised step by step to nice
// +10 for a job that runs long) so that I/O threads keep serving while logins saturate
// them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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
  // the scheduling group leave idle, see ServerOptions::worker_priority), low (nice 10),
  // normal (for threads that mostly wait on a database), adaptive (nice 10, and SCHED_IDLE
  // while a job runs; a guard thread ages a job that runs long: after `raise_after` its
  // thread leaves SCHED_IDLE for nice 19, after twice that it gets nice 15, after three
  // times nice 10, until the job ends. Where the process may not leave SCHED_IDLE again,
  // RLIMIT_NICE under 10 without CAP_SYS_NICE, the threads run as low and
  // adaptive_refused() says so).
  enum class Priority { idle, low, normal, adaptive };
  // adaptive: the nice values of the guard's steps, in order.
  static constexpr int kAgingNice[] = {19, 15, 10};
  // adaptive: `on_step`, when set, is told of each step the guard takes (0 for the first,
  // out of SCHED_IDLE to nice kAgingNice[0], 1 and 2 for the next) and whether the kernel
  // took it (it refuses where RLIMIT_NICE was lowered after the pool started); on the
  // guard thread, in order for any one job, under the guard's lock (it must not call into
  // the pool).
  using StepObserver = std::function<void(std::size_t step, bool taken)>;
  WorkerPool(unsigned threads, std::size_t capacity, WaitObserver on_wait = {},
             Priority priority = Priority::low,
             std::chrono::milliseconds raise_after = std::chrono::milliseconds{1000},
             StepObserver on_step = {});
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
  // adaptive: jobs whose thread was raised out of SCHED_IDLE because they ran for
  // raise_after.
  [[nodiscard]] std::uint64_t raised() const noexcept {
    return raised_.load(std::memory_order_relaxed);
  }
  // adaptive was asked but the threads could not have been raised again once idle, so
  // they run as low.
  [[nodiscard]] bool adaptive_refused() const noexcept { return adaptive_refused_; }

 private:
  void work(std::latch& started, std::size_t index);
  void guard();

  struct Job {
    std::function<void()> run;
    std::chrono::steady_clock::time_point queued_at;
  };
  void run_adaptive(Job& job, std::size_t index);

  std::size_t capacity_;
  std::size_t thread_count_;
  WaitObserver on_wait_;
  StepObserver on_step_;
  Priority priority_;
  std::chrono::milliseconds raise_after_;
  bool adaptive_refused_ = false;
  std::atomic<std::size_t> busy_{0};
  std::atomic<std::uint64_t> raised_{0};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  // adaptive: what the guard needs to know of each worker, under guard_mutex_ (never
  // held with mutex_, the queue's, which the I/O threads take).
  struct Slot {
    int tid = 0;
    std::chrono::steady_clock::time_point started{};  // of the running job; {} when none
    std::size_t steps = 0;                            // of kAgingNice taken for the running job
  };
  std::mutex guard_mutex_;
  std::vector<Slot> slots_;
  std::condition_variable guard_wake_;
  bool guard_sleeping_ = false;  // in an untimed wait: no job was running
  bool guard_stopping_ = false;
  std::thread guard_;
};

}  // namespace gatehouse::http
