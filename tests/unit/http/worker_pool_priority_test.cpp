// The hashing pool's scheduling priority (src/http/worker_pool.cpp): what each
// WorkerPool::Priority gives its threads, as the kernel reports it.
#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <iterator>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "http/worker_pool.hpp"

namespace {

using gatehouse::http::WorkerPool;

using namespace std::chrono_literals;

struct Seen {
  int policy = -1;
  int nice = -100;
};

int this_thread_id() { return static_cast<int>(syscall(SYS_gettid)); }

// A thread's scheduling policy and nice, as the kernel reports them.
Seen of_thread(int tid) {
  Seen s;
  s.policy = sched_getscheduler(tid);
  errno = 0;
  s.nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  return s;
}

Seen now_seen() { return of_thread(this_thread_id()); }

// Polls thread `tid` until its policy is `policy` (or 10 s pass); what it last saw.
Seen wait_for_policy(int tid, int policy) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (of_thread(tid).policy != policy && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  return of_thread(tid);
}

// Drops CAP_SYS_NICE from the calling thread (capabilities are per thread): from its
// effective set, and from its permitted set too where `for_good`. False on failure.
bool drop_cap_sys_nice(bool for_good) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_TO_INDEX(CAP_SYS_NICE)].effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
  if (for_good) data[CAP_TO_INDEX(CAP_SYS_NICE)].permitted &= ~CAP_TO_MASK(CAP_SYS_NICE);
  return syscall(SYS_capset, &header, data) == 0;
}

Seen seen_by_a_job(WorkerPool::Priority priority) {
  WorkerPool pool(1, 4, {}, priority);
  std::promise<Seen> seen;
  EXPECT_TRUE(pool.try_submit([&seen] { seen.set_value(now_seen()); }));
  return seen.get_future().get();
}

TEST(WorkerPoolPriority, IdleRunsJobsUnderSchedIdle) {
  EXPECT_EQ(seen_by_a_job(WorkerPool::Priority::idle).policy, SCHED_IDLE);
}

TEST(WorkerPoolPriority, LowRunsJobsAtNiceTen) {
  const auto s = seen_by_a_job(WorkerPool::Priority::low);
  EXPECT_EQ(s.policy, SCHED_OTHER);
  EXPECT_EQ(s.nice, 10);
}

TEST(WorkerPoolPriority, NormalLeavesTheThreadAsItWas) {
  const auto s = seen_by_a_job(WorkerPool::Priority::normal);
  EXPECT_EQ(s.policy, SCHED_OTHER);
  EXPECT_EQ(s.nice, getpriority(PRIO_PROCESS, 0));
}

// adaptive needs a process that may leave SCHED_IDLE again (root, or RLIMIT_NICE >= 10):
// elsewhere these tests are skipped (the fallback has its own test below).
bool adaptive_allowed() {
  return !WorkerPool(1, 1, {}, WorkerPool::Priority::adaptive).adaptive_refused();
}

TEST(WorkerPoolPriority, AdaptiveWaitsAtNiceTenAndRunsJobsIdle) {
  if (!adaptive_allowed()) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 1h);
  std::promise<std::pair<int, Seen>> seen;
  ASSERT_TRUE(pool.try_submit([&seen] { seen.set_value({this_thread_id(), now_seen()}); }));
  const auto [tid, in_job] = seen.get_future().get();
  EXPECT_EQ(in_job.policy, SCHED_IDLE);
  EXPECT_EQ(in_job.nice, 10);  // what SCHED_OTHER gives it back
  // Between jobs: SCHED_OTHER at nice 10 (the thread lowers itself right after the job).
  const Seen between = wait_for_policy(tid, SCHED_OTHER);
  EXPECT_EQ(between.policy, SCHED_OTHER);
  EXPECT_EQ(between.nice, 10);
  EXPECT_EQ(pool.raised(), 0u);
}

// The steps the guard takes, each with the thread's state as the kernel reports it right
// after the step (the observer runs under the guard's lock, before the worker can change
// anything): no polling, so no step is missed on a busy machine.
struct StepLog {
  std::mutex mutex;
  std::vector<std::pair<std::size_t, Seen>> steps;
  std::atomic<int> tid{0};
  std::atomic<bool> armed{false};  // by arm(): steps before it are not logged
  std::promise<void> first, last;  // the first job's first and last steps
  bool first_set = false, last_set = false;
  void operator()(std::size_t step, bool taken) {
    if (!armed) return;
    std::lock_guard lock(mutex);
    EXPECT_TRUE(taken) << "step " << step;
    steps.emplace_back(step, of_thread(tid.load()));
    if (step == 0 && !std::exchange(first_set, true)) first.set_value();
    if (step + 1 == std::size(WorkerPool::kAgingNice) && !std::exchange(last_set, true))
      last.set_value();
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return steps.size();
  }
};

// Finds the pool's one thread with a job that does nothing else, waits until that job is
// over (its slot cleared: busy() drops after that), then arms the log. A step the guard
// took on that job, starved past raise_after on a busy machine, is not logged.
int arm(StepLog& log, WorkerPool& pool) {
  std::promise<int> tid;
  EXPECT_TRUE(pool.try_submit([&tid] { tid.set_value(this_thread_id()); }));
  const int found = tid.get_future().get();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.busy() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  EXPECT_EQ(pool.busy(), 0u);
  log.tid = found;
  log.armed = true;
  return found;
}

TEST(WorkerPoolPriority, AdaptiveAgesAJobThatRunsLongThenTheNextRunsIdle) {
  if (!adaptive_allowed()) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  StepLog log;
  WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 300ms,
                  [&log](std::size_t step, bool taken) { log(step, taken); });
  arm(log, pool);
  std::promise<std::pair<Seen, std::size_t>> at_start;
  std::promise<void> release;
  auto released = release.get_future().share();
  ASSERT_TRUE(pool.try_submit([&at_start, &log, released] {
    const Seen s = now_seen();  // before the count: a step seen here is counted
    at_start.set_value({s, log.count()});
    released.wait();  // runs until the guard has taken its last step
  }));
  const auto [in_job, steps_before] = at_start.get_future().get();
  // The job starts under SCHED_IDLE (unless it was starved past the first step).
  EXPECT_TRUE(in_job.policy == SCHED_IDLE || steps_before > 0) << in_job.policy;
  EXPECT_TRUE(in_job.nice == 10 || steps_before > 0) << in_job.nice;
  ASSERT_EQ(log.last.get_future().wait_for(20s), std::future_status::ready);
  release.set_value();
  {
    std::lock_guard lock(log.mutex);
    ASSERT_EQ(log.steps.size(), 3u);
    const std::pair<int, int> aged[] = {{SCHED_OTHER, 19}, {SCHED_OTHER, 15}, {SCHED_OTHER, 10}};
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(log.steps[i].first, i);
      EXPECT_EQ(std::pair(log.steps[i].second.policy, log.steps[i].second.nice), aged[i])
          << "after step " << i;
    }
  }
  EXPECT_EQ(pool.raised(), 1u);  // counted once, at its first step
  std::promise<Seen> next_job;
  ASSERT_TRUE(pool.try_submit([&next_job] { next_job.set_value(now_seen()); }));
  // The thread lowered itself again for the next job, back at nice 10 (unless that one was
  // starved for 300 ms on a busy machine and raised in its turn).
  const Seen next = next_job.get_future().get();
  EXPECT_TRUE(next.policy == SCHED_IDLE || pool.raised() == 2u) << next.policy;
  EXPECT_TRUE(next.nice == 10 || pool.raised() == 2u) << next.nice;
  pool.stop();
}

TEST(WorkerPoolPriority, AdaptiveRestoresNiceTenAfterAJobRaisedOneStep) {
  if (!adaptive_allowed()) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  StepLog log;
  // One second to the next step: the job ends long before it.
  WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 1s,
                  [&log](std::size_t step, bool taken) { log(step, taken); });
  const int tid = arm(log, pool);
  auto first_step = log.first.get_future().share();
  // Ends at its first step (or after 30 s, so that a failed test does not hang).
  ASSERT_TRUE(pool.try_submit([first_step] { first_step.wait_for(30s); }));
  ASSERT_EQ(first_step.wait_for(20s), std::future_status::ready);
  // busy() drops after the worker has restored itself.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.busy() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  ASSERT_EQ(pool.busy(), 0u);
  {
    std::lock_guard lock(log.mutex);
    ASSERT_EQ(log.steps.size(), 1u) << "the job ran on to a second step";
    EXPECT_EQ(log.steps[0].second.nice, 19);
  }
  // Between jobs the thread waits at nice 10 again, under SCHED_OTHER.
  const Seen between = of_thread(tid);
  EXPECT_EQ(between.policy, SCHED_OTHER);
  EXPECT_EQ(between.nice, 10);
}

TEST(WorkerPoolPriority, AdaptiveLeavesShortJobsIdle) {
  if (!adaptive_allowed()) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  WorkerPool pool(2, 64, {}, WorkerPool::Priority::adaptive, 1h);
  std::vector<std::future<Seen>> seen;
  std::vector<std::promise<Seen>> promises(20);
  for (auto& p : promises) {
    seen.push_back(p.get_future());
    ASSERT_TRUE(pool.try_submit([&p] { p.set_value(now_seen()); }));
  }
  for (auto& f : seen) EXPECT_EQ(f.get().policy, SCHED_IDLE);
  pool.stop();
  EXPECT_EQ(pool.raised(), 0u);
}

// Without CAP_SYS_NICE and with RLIMIT_NICE 0 (an unprivileged user's default), a thread
// could not come back from SCHED_IDLE: the pool runs as low and says so. In a child
// process, which drops the capability.
TEST(WorkerPoolPriority, AdaptiveFallsBackToLowWhereNoThreadCouldBeRaisedAgain) {
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    alarm(30);  // a hang fails the test instead of hanging it
    if (!drop_cap_sys_nice(true)) _exit(11);
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_NICE, &none) != 0) _exit(12);
    WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 50ms);
    if (!pool.adaptive_refused()) _exit(13);
    std::promise<Seen> seen;
    if (!pool.try_submit([&seen] { seen.set_value(now_seen()); })) _exit(14);
    const Seen s = seen.get_future().get();
    if (s.policy != SCHED_OTHER) _exit(15);  // low: no SCHED_IDLE it could not leave
    if (s.nice != 10) _exit(16);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10-12: setup failed; 13: not refused; 14-16: wrong "
                                       "priority";
}

// Where the kernel refuses a step (the process's limits changed after the pool started:
// RLIMIT_NICE lowered, CAP_SYS_NICE dropped), the observer is told, so that the server can
// say so. In a child process with RLIMIT_NICE 0, whose guard thread drops CAP_SYS_NICE
// (capabilities are per thread) when told of the first step: the second is refused.
TEST(WorkerPoolPriority, AdaptiveTellsOfAStepTheKernelRefused) {
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    alarm(30);
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_NICE, &none) != 0) _exit(10);
    std::mutex mutex;
    std::vector<std::pair<std::size_t, bool>> told;
    std::promise<void> last_step;
    WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 50ms,
                    [&](std::size_t step, bool taken) {
                      std::lock_guard lock(mutex);
                      told.emplace_back(step, taken);
                      if (step == 2) last_step.set_value();
                      if (step != 0) return;
                      if (!drop_cap_sys_nice(false)) _exit(12);
                    });
    if (pool.adaptive_refused()) _exit(40);  // no CAP_SYS_NICE to begin with: skipped
    std::atomic<int> worker{0};
    auto stepped = last_step.get_future().share();
    if (!pool.try_submit([&worker, stepped] {
          worker = this_thread_id();
          stepped.wait();  // until the guard has tried all three steps (alarm: a hang fails)
        }))
      _exit(13);
    while (pool.busy() != 0 || worker == 0) std::this_thread::sleep_for(2ms);
    // The worker (which kept CAP_SYS_NICE) came back to nice 10 from the 19 of the one
    // step the kernel took.
    const Seen after = of_thread(worker);
    pool.stop();
    std::lock_guard lock(mutex);
    const std::vector<std::pair<std::size_t, bool>> want = {{0, true}, {1, false}, {2, false}};
    if (told != want) _exit(14);
    if (pool.raised() != 1) _exit(15);
    if (after.policy != SCHED_OTHER || after.nice != 10) _exit(16);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == 40) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10-13: setup failed; 14: not told as refused; 15: "
                                       "counted wrong; 16: not back at nice 10";
}

}  // namespace
