// The hashing pool's scheduling priority (src/http/worker_pool.cpp): what each
// WorkerPool::Priority gives its threads, as the kernel reports it.
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <future>

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
