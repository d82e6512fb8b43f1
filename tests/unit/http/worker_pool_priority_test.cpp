// The hashing pool's scheduling priority (src/http/worker_pool.cpp): what each
// WorkerPool::Priority gives its threads, as the kernel reports it.
#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include "http/worker_pool.hpp"

namespace {

using gatehouse::http::WorkerPool;

struct Seen {
  int policy = -1;
  int nice = -100;
};

Seen seen_by_a_job(WorkerPool::Priority priority) {
  WorkerPool pool(1, 4, {}, priority);
  std::promise<Seen> seen;
  EXPECT_TRUE(pool.try_submit([&seen] {
    Seen s;
    s.policy = sched_getscheduler(0);
    errno = 0;
    s.nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
    seen.set_value(s);
  }));
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

}  // namespace

namespace {

using namespace std::chrono_literals;

Seen now_seen() {
  Seen s;
  s.policy = sched_getscheduler(0);
  errno = 0;
  s.nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  return s;
}

TEST(WorkerPoolPriority, AdaptiveRunsJobsIdleAtNiceTen) {
  const auto s = seen_by_a_job(WorkerPool::Priority::adaptive);
  EXPECT_EQ(s.policy, SCHED_IDLE);
  EXPECT_EQ(s.nice, 10);  // what a raise gives it back
}

TEST(WorkerPoolPriority, AdaptiveRaisesAJobThatRunsTooLongThenLowersTheThreadAgain) {
  WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 50ms);
  ASSERT_FALSE(pool.adaptive_refused());  // the tests run as root
  std::promise<std::pair<Seen, Seen>> long_job;
  ASSERT_TRUE(pool.try_submit([&long_job] {
    const Seen before = now_seen();
    std::this_thread::sleep_for(400ms);  // the guard raises it after 50 ms
    long_job.set_value({before, now_seen()});
  }));
  const auto [before, after] = long_job.get_future().get();
  EXPECT_EQ(before.policy, SCHED_IDLE);
  EXPECT_EQ(after.policy, SCHED_OTHER);
  EXPECT_EQ(after.nice, 10);
  std::promise<Seen> next_job;
  ASSERT_TRUE(pool.try_submit([&next_job] { next_job.set_value(now_seen()); }));
  EXPECT_EQ(next_job.get_future().get().policy, SCHED_IDLE);
  EXPECT_EQ(pool.raised(), 1u);
}

TEST(WorkerPoolPriority, AdaptiveLeavesShortJobsIdle) {
  WorkerPool pool(2, 64, {}, WorkerPool::Priority::adaptive, 10s);
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
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) _exit(10);
    for (auto& d : data) {
      d.effective &= ~(1u << CAP_SYS_NICE);
      d.permitted &= ~(1u << CAP_SYS_NICE);
    }
    if (syscall(SYS_capset, &header, data) != 0) _exit(11);
    rlimit none{0, 0};
    if (setrlimit(RLIMIT_NICE, &none) != 0) _exit(12);
    WorkerPool pool(1, 4, {}, WorkerPool::Priority::adaptive, 50ms);
    if (!pool.adaptive_refused()) _exit(13);
    std::promise<Seen> seen;
    if (!pool.try_submit([&seen] { seen.set_value(now_seen()); })) _exit(14);
    const Seen s = seen.get_future().get();
    if (s.policy != SCHED_OTHER) _exit(15);
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
