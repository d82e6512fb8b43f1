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

TEST(WorkerPoolPriority, AdaptiveAgesAJobThatRunsLongThenTheNextRunsIdle) {
  if (!adaptive_allowed()) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  std::atomic<int> observed{0};
  WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 300ms, [&observed] { ++observed; });
  std::promise<int> tid_of_job;
  std::promise<void> release;
  auto released = release.get_future().share();
  ASSERT_TRUE(pool.try_submit([&tid_of_job, released] {
    tid_of_job.set_value(this_thread_id());
    released.wait();  // runs until the test has seen it at nice 10
  }));
  const int tid = tid_of_job.get_future().get();
  // Every state the thread goes through until it is at nice 10, in order (one step each
  // 300 ms: the test polls every 2 ms).
  std::vector<std::pair<int, int>> states;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    const Seen s = of_thread(tid);
    if (states.empty() || states.back() != std::pair{s.policy, s.nice})
      states.emplace_back(s.policy, s.nice);
    if ((s.policy == SCHED_OTHER && s.nice == 10) || std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(2ms);
  }
  release.set_value();
  const std::vector<std::pair<int, int>> aging = {
      {SCHED_IDLE, 10}, {SCHED_OTHER, 19}, {SCHED_OTHER, 15}, {SCHED_OTHER, 10}};
  EXPECT_EQ(states, aging);
  std::promise<Seen> next_job;
  ASSERT_TRUE(pool.try_submit([&next_job] { next_job.set_value(now_seen()); }));
  // The thread lowered itself again for the next job, back at nice 10 (unless that one was
  // starved for 300 ms on a busy machine and raised in its turn).
  const Seen next = next_job.get_future().get();
  EXPECT_TRUE(next.policy == SCHED_IDLE || pool.raised() == 2u) << next.policy;
  EXPECT_TRUE(next.nice == 10 || pool.raised() == 2u) << next.nice;
  EXPECT_GE(pool.raised(), 1u);
  pool.stop();
  EXPECT_EQ(static_cast<std::uint64_t>(observed.load()), pool.raised());  // the metric's feed
}

TEST(WorkerPoolPriority, AdaptiveRestoresNiceTenAfterAJobRaisedOneStep) {
  if (!adaptive_allowed()) GTEST_SKIP() << "the process may not leave SCHED_IDLE again";
  WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 300ms);
  std::promise<int> tid_of_job;
  std::promise<void> release;
  auto released = release.get_future().share();
  ASSERT_TRUE(pool.try_submit([&tid_of_job, released] {
    tid_of_job.set_value(this_thread_id());
    released.wait();
  }));
  const int tid = tid_of_job.get_future().get();
  const Seen first = wait_for_policy(tid, SCHED_OTHER);
  release.set_value();  // ends the job at its first step (nice 19), or a later one
  EXPECT_NE(first.nice, 10) << "the first step is below nice 10";
  // Between jobs the thread waits at nice 10 again, whatever step its job had reached.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.busy() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  std::this_thread::sleep_for(20ms);
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
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) _exit(10);
    data[CAP_TO_INDEX(CAP_SYS_NICE)].effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
    data[CAP_TO_INDEX(CAP_SYS_NICE)].permitted &= ~CAP_TO_MASK(CAP_SYS_NICE);
    if (syscall(SYS_capset, &header, data) != 0) _exit(11);
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
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10-12: setup failed; 13: not refused; 14-16: wrong "
                                       "priority";
}

}  // namespace
